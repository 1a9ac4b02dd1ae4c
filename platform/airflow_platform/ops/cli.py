"""`airflow-platform ops ...`: day-2 operations on a cluster (kubeconfig/context,
namespace, release) or, with --local, on the local platform's state directory.

Snapshot commands live in cli_snapshots, database commands in cli_db, token signing keys
in cli_jwt; the option groups every command shares in options."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer

from airflow_platform.ops import cli_db, cli_jwt, cli_snapshots
from airflow_platform.ops.cli_db import print_retention
from airflow_platform.ops.cli_snapshots import _environment_of
from airflow_platform.ops.errors import OpsError
from airflow_platform.ops.options import Where, fail, retention_plan, where_options

# Kept importable from here: `local retention` and the tests use them.
__all__ = ["_environment_of", "ops_app", "print_retention", "register", "retention_plan"]

ops_app = typer.Typer(
    help="Day-2 operations: status, Airflow CLI, API token, hibernate/resume, snapshots.",
    no_args_is_help=True,
)


@ops_app.command()
@where_options
def status(
    where: Where,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    no_db_view: Annotated[
        bool,
        typer.Option(
            "--no-db-view",
            help="Only the Kubernetes objects: skip the heartbeat (service proxy), import "
            "errors and canary (ops probe in a scheduler pod).",
        ),
    ] = False,
) -> None:
    """The environment's Status (MWAA's names), components, workers, heartbeat, import
    errors, migrations and the canary's last result. Exit 1 unless AVAILABLE."""
    from rich.console import Console

    from airflow_platform.ops.view import show

    try:
        if where.local:
            from airflow_platform.ops.local_source import local_status

            found = local_status(where.state_dir, use_probe=not no_db_view)
        else:
            from airflow_platform.ops.cluster_status import cluster_status

            found = cluster_status(where.kube(), db_view=not no_db_view)
    except OpsError as exc:
        raise fail(exc) from None
    if as_json:
        typer.echo(json.dumps(found.to_dict(), indent=2, default=str))
    else:
        show(found, Console(highlight=False))
    if found.status not in ("AVAILABLE", "HIBERNATED"):
        raise typer.Exit(1)


@ops_app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
@where_options
def airflow(ctx: typer.Context, where: Where) -> None:
    """Run an allowed Airflow CLI command in a scheduler pod (MWAA's supported commands):
    `airflow-platform ops airflow -- dags list`. Output and exit code are passed through."""
    from airflow_platform.ops.allowlist import check_command

    try:
        argv = check_command(ctx.args)
        if where.local:
            from airflow_platform.ops.local_source import _platform, run_airflow

            code = run_airflow(_platform(where.state_dir), ["airflow", *argv]).returncode
        else:
            from airflow_platform.ops.podexec import passthrough

            code = passthrough(where.kube(), argv)
    except OpsError as exc:
        raise fail(exc) from None
    raise typer.Exit(code)


@ops_app.command()
@where_options
def token(
    where: Where,
    api_url: Annotated[
        str | None, typer.Option(help="API server URL (default: through the cluster's API).")
    ] = None,
    username: Annotated[str, typer.Option(help="Airflow user.")] = "admin",
    as_json: Annotated[bool, typer.Option("--json", help="Token and expiry as JSON.")] = False,
) -> None:
    """Print a REST API token (Authorization: Bearer ...). The password comes from
    AIRFLOW_PLATFORM_API_PASSWORD; with --local, the user signs in through the local OpenID
    Connect provider with its seeded password."""
    from airflow_platform.ops.token import token_from_url, token_through_cluster

    try:
        if where.local:
            from airflow_platform.local.oidc_login import SignInRefused, api_token
            from airflow_platform.ops.local_source import _platform
            from airflow_platform.ops.token import Token, expiry

            platform = _platform(where.state_dir)
            try:
                api = platform.api(username)
            except KeyError:
                raise OpsError(f"{username!r} is not a user of the local platform "
                               "(admin, op, user, viewer)") from None  # fmt: skip
            # The local users sign in through the OpenID Connect provider, as a browser does.
            try:
                access = api_token(api_url or api.base_url, username, api.password)
            except SignInRefused as exc:
                raise OpsError(f"sign-in as {username!r} refused: {exc}") from None
            found = Token(access, expiry(access))
        else:
            password = os.environ.get("AIRFLOW_PLATFORM_API_PASSWORD")
            if not password:
                raise OpsError("set AIRFLOW_PLATFORM_API_PASSWORD to the password of "
                               f"{username!r} (--username)")  # fmt: skip
            if api_url:
                found = token_from_url(api_url, username, password)
            else:
                found = token_through_cluster(where.kube(), username, password)
    except OpsError as exc:
        raise fail(exc) from None
    if as_json:
        typer.echo(json.dumps({"access_token": found.access_token,
                               "expires_at": found.expires_at}))  # fmt: skip
    else:
        typer.echo(found.access_token)


def _scale(where: Where, asleep: bool) -> None:
    """hibernate (asleep) or resume, locally or on the cluster, and say what changed."""
    try:
        if where.local:
            from airflow_platform.ops import local_source

            if asleep:
                names = local_source.hibernate_local(where.state_dir)
                typer.echo(f"hibernated: stopped {', '.join(names)}; services and state kept")
            else:
                names = local_source.resume_local(where.state_dir)
                typer.echo(f"resumed: {', '.join(names)} healthy")
            return
        from airflow_platform.ops import hibernation

        outcome = (hibernation.hibernate if asleep else hibernation.resume)(where.kube())
    except OpsError as exc:
        raise fail(exc) from None
    for c in outcome.changes:
        typer.echo(f"{c.kind}/{c.name}: {c.before} -> {c.after}")
    if asleep:
        typer.echo(f"hibernated in {outcome.seconds:.1f}s; `ops resume` restores these counts")
    else:
        typer.echo(f"resumed in {outcome.seconds:.1f}s")


@ops_app.command()
@where_options
def hibernate(where: Where) -> None:
    """Scale every component to 0 and pause the scalers; keep database, bucket and values."""
    _scale(where, asleep=True)


@ops_app.command()
@where_options
def resume(where: Where) -> None:
    """Restore the replica counts hibernate saved and un-pause the scalers."""
    _scale(where, asleep=False)


for _part in (cli_snapshots.app, cli_db.app, cli_jwt.app):
    ops_app.registered_commands += _part.registered_commands
    ops_app.registered_groups += _part.registered_groups


def register(app: typer.Typer) -> None:
    app.add_typer(ops_app, name="ops")
