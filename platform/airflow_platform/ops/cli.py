"""`airflow-platform ops ...`: day-2 operations on a cluster (kubeconfig/context,
namespace, release) or, with --local, on the local platform's state directory."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from airflow_platform.ops.errors import OpsError

ops_app = typer.Typer(
    help="Day-2 operations: status, Airflow CLI, API token, hibernate/resume, snapshots.",
    no_args_is_help=True,
)

KubeconfigOpt = Annotated[
    Path | None, typer.Option("--kubeconfig", envvar="KUBECONFIG", help="kubeconfig file.")
]
ContextOpt = Annotated[str | None, typer.Option("--context", help="kubeconfig context.")]
NamespaceOpt = Annotated[str, typer.Option("--namespace", "-n", help="Namespace of the release.")]
ReleaseOpt = Annotated[str, typer.Option("--release", help="Helm release name.")]
LocalOpt = Annotated[bool, typer.Option("--local", help="The local platform instead of a cluster.")]
StateOpt = Annotated[
    Path,
    typer.Option(
        "--state-dir", envvar="AIRFLOW_PLATFORM_LOCAL_STATE", help="Local platform state."
    ),
]


def _fail(exc: Exception) -> typer.Exit:
    from rich.console import Console

    Console(stderr=True, highlight=False).print(
        f"[bold red]error:[/bold red] {exc}", soft_wrap=True
    )
    return typer.Exit(2)


def _kube(kubeconfig: Path | None, context: str | None, namespace: str, release: str):
    from airflow_platform.ops.kube import Target, connect

    return connect(Target(kubeconfig, context, namespace, release))


@ops_app.command()
def status(
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = "airflow",
    release: ReleaseOpt = "airflow",
    local: LocalOpt = False,
    state_dir: StateOpt = Path(".local-state"),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    no_exec: Annotated[
        bool, typer.Option("--no-exec", help="Skip the database view (no pods/exec).")
    ] = False,
) -> None:
    """The environment's Status (MWAA's names), components, workers, heartbeat, import
    errors, migrations and the canary's last result. Exit 1 unless AVAILABLE."""
    from rich.console import Console

    from airflow_platform.ops.view import show

    try:
        if local:
            from airflow_platform.ops.local_source import local_status

            found = local_status(state_dir, use_probe=not no_exec)
        else:
            from airflow_platform.ops.cluster_status import cluster_status

            kube = _kube(kubeconfig, context, namespace, release)
            found = cluster_status(kube, use_exec=not no_exec)
    except OpsError as exc:
        raise _fail(exc) from None
    if as_json:
        typer.echo(json.dumps(found.to_dict(), indent=2, default=str))
    else:
        show(found, Console(highlight=False))
    if found.status not in ("AVAILABLE", "HIBERNATED"):
        raise typer.Exit(1)


@ops_app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def airflow(
    ctx: typer.Context,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = "airflow",
    release: ReleaseOpt = "airflow",
    local: LocalOpt = False,
    state_dir: StateOpt = Path(".local-state"),
) -> None:
    """Run an allowed Airflow CLI command in a scheduler pod (MWAA's supported commands):
    `airflow-platform ops airflow -- dags list`. Output and exit code are passed through."""
    from airflow_platform.ops.allowlist import check_command

    try:
        argv = check_command(ctx.args)
        if local:
            from airflow_platform.ops.local_source import _platform, run_airflow

            code = run_airflow(_platform(state_dir), ["airflow", *argv]).returncode
        else:
            from airflow_platform.ops.podexec import passthrough

            code = passthrough(_kube(kubeconfig, context, namespace, release), argv)
    except OpsError as exc:
        raise _fail(exc) from None
    raise typer.Exit(code)


@ops_app.command()
def token(
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = "airflow",
    release: ReleaseOpt = "airflow",
    local: LocalOpt = False,
    state_dir: StateOpt = Path(".local-state"),
    api_url: Annotated[
        str | None, typer.Option(help="API server URL (default: through the cluster's API).")
    ] = None,
    username: Annotated[str, typer.Option(help="Airflow user.")] = "admin",
    as_json: Annotated[bool, typer.Option("--json", help="Token and expiry as JSON.")] = False,
) -> None:
    """Print a REST API token (Authorization: Bearer ...). The password comes from
    AIRFLOW_PLATFORM_API_PASSWORD (or, with --local, the platform's admin password)."""
    from airflow_platform.ops.token import token_from_url, token_through_cluster

    try:
        if local:
            from airflow_platform.ops.local_source import _platform

            platform = _platform(state_dir)
            api = platform.api()
            found = token_from_url(api_url or api.base_url, username, api.password)
        else:
            password = os.environ.get("AIRFLOW_PLATFORM_API_PASSWORD")
            if not password:
                raise OpsError("set AIRFLOW_PLATFORM_API_PASSWORD to the password of "
                               f"{username!r} (--username)")  # fmt: skip
            if api_url:
                found = token_from_url(api_url, username, password)
            else:
                kube = _kube(kubeconfig, context, namespace, release)
                found = token_through_cluster(kube, username, password)
    except OpsError as exc:
        raise _fail(exc) from None
    if as_json:
        typer.echo(json.dumps({"access_token": found.access_token,
                               "expires_at": found.expires_at}))  # fmt: skip
    else:
        typer.echo(found.access_token)


@ops_app.command()
def hibernate(
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = "airflow",
    release: ReleaseOpt = "airflow",
    local: LocalOpt = False,
    state_dir: StateOpt = Path(".local-state"),
) -> None:
    """Scale every component to 0 and pause the scalers; keep database, bucket and values."""
    try:
        if local:
            from airflow_platform.ops.local_source import hibernate_local

            stopped = hibernate_local(state_dir)
            typer.echo(f"hibernated: stopped {', '.join(stopped)}; services and state kept")
            return
        from airflow_platform.ops.hibernation import hibernate as run

        outcome = run(_kube(kubeconfig, context, namespace, release))
    except OpsError as exc:
        raise _fail(exc) from None
    for c in outcome.changes:
        typer.echo(f"{c.kind}/{c.name}: {c.before} -> {c.after}")
    typer.echo(f"hibernated in {outcome.seconds:.1f}s; `ops resume` restores these counts")


@ops_app.command()
def resume(
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = "airflow",
    release: ReleaseOpt = "airflow",
    local: LocalOpt = False,
    state_dir: StateOpt = Path(".local-state"),
) -> None:
    """Restore the replica counts hibernate saved and un-pause the scalers."""
    try:
        if local:
            from airflow_platform.ops.local_source import resume_local

            started = resume_local(state_dir)
            typer.echo(f"resumed: {', '.join(started)} healthy")
            return
        from airflow_platform.ops.hibernation import resume as run

        outcome = run(_kube(kubeconfig, context, namespace, release))
    except OpsError as exc:
        raise _fail(exc) from None
    for c in outcome.changes:
        typer.echo(f"{c.kind}/{c.name}: {c.before} -> {c.after}")
    typer.echo(f"resumed in {outcome.seconds:.1f}s")


@ops_app.command(hidden=True)
def probe() -> None:
    """Print the metadata database's view as JSON (run inside an Airflow environment)."""
    from airflow_platform.ops.probe import main

    main()
    sys.stdout.flush()


def register(app: typer.Typer) -> None:
    app.add_typer(ops_app, name="ops")
