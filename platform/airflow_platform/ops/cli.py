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
        if local:
            from airflow_platform.ops.local_source import local_status

            found = local_status(state_dir, use_probe=not no_db_view)
        else:
            from airflow_platform.ops.cluster_status import cluster_status

            kube = _kube(kubeconfig, context, namespace, release)
            found = cluster_status(kube, db_view=not no_db_view)
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
    AIRFLOW_PLATFORM_API_PASSWORD; with --local, the user signs in through the local OpenID
    Connect provider with its seeded password."""
    from airflow_platform.ops.token import token_from_url, token_through_cluster

    try:
        if local:
            from airflow_platform.local.oidc_login import SignInRefused, api_token
            from airflow_platform.ops.local_source import _platform
            from airflow_platform.ops.token import Token, expiry

            platform = _platform(state_dir)
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


snapshot_app = typer.Typer(help="Take a metadata snapshot.", no_args_is_help=True)
ops_app.add_typer(snapshot_app, name="snapshot")

MethodOpt = Annotated[str, typer.Option("--method", help="rds (Aurora) or pg_dump (to S3).")]
ClusterOpt = Annotated[
    str | None, typer.Option("--db-cluster", help="Aurora DB cluster identifier (rds).")
]
S3Opt = Annotated[str | None, typer.Option("--s3-uri", help="s3://bucket/prefix/ (pg_dump).")]
EnvironmentOpt = Annotated[
    str, typer.Option("--environment", help="Environment name (snapshots are named by it).")
]
DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url", envvar="AIRFLOW_PLATFORM_DATABASE_URL", help="PostgreSQL URL (pg_dump)."
    ),
]


def _need(value: str | None, option: str, method: str) -> str:
    if not value:
        raise OpsError(f"--method {method} needs {option}")
    return value


def _method(method: str) -> str:
    if method not in ("rds", "pg_dump"):
        raise OpsError(f"--method {method!r}: use rds (Aurora) or pg_dump (any PostgreSQL)")
    return method


@snapshot_app.command("create")
def snapshot_create(
    method: MethodOpt = "rds",
    db_cluster: ClusterOpt = None,
    s3_uri: S3Opt = None,
    environment: EnvironmentOpt = "airflow",
    database_url: DatabaseOpt = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until it is available.")] = False,
    timeout: Annotated[float, typer.Option(help="Longest wait in seconds.")] = 1800,
) -> None:
    """Take a snapshot of the metadata database (the chart's pre-upgrade hook runs this)."""
    from airflow_platform.ops import snapshots

    try:
        if _method(method) == "rds":
            found = snapshots.rds_create(
                _need(db_cluster, "--db-cluster", method), environment, wait, timeout
            )
        else:
            found = snapshots.dump_create(
                _need(database_url, "--database-url", method),
                _need(s3_uri, "--s3-uri", method),
                environment,
            )
    except OpsError as exc:
        raise _fail(exc) from None
    typer.echo(f"snapshot {found.id}: {found.status} ({found.where})")


@ops_app.command()
def snapshots(
    method: MethodOpt = "rds",
    db_cluster: ClusterOpt = None,
    s3_uri: S3Opt = None,
    environment: EnvironmentOpt = "airflow",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the environment's metadata snapshots, oldest first."""
    from dataclasses import asdict

    from rich.console import Console
    from rich.table import Table

    from airflow_platform.ops import snapshots as snaps

    try:
        if _method(method) == "rds":
            found = snaps.rds_list(_need(db_cluster, "--db-cluster", method), environment)
        else:
            found = snaps.dump_list(_need(s3_uri, "--s3-uri", method), environment)
    except OpsError as exc:
        raise _fail(exc) from None
    if as_json:
        typer.echo(json.dumps([asdict(s) for s in found], indent=2))
        return
    table = Table("snapshot", "created", "status", "size", "where")
    for s in found:
        table.add_row(s.id, s.created, s.status, s.size, s.where)
    Console(highlight=False).print(table)


@ops_app.command()
def restore(
    snapshot: Annotated[str, typer.Argument(help="Snapshot id from `ops snapshots`.")],
    method: MethodOpt = "rds",
    s3_uri: S3Opt = None,
    database_url: DatabaseOpt = None,
    new_db_cluster: Annotated[
        str | None, typer.Option(help="Aurora cluster to create from the snapshot (rds).")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Restore a snapshot: rds creates a new Aurora cluster from it; pg_dump replaces the
    database's contents (hibernate the environment first)."""
    from airflow_platform.ops import snapshots as snaps

    try:
        if _method(method) == "rds":
            target = _need(new_db_cluster, "--new-db-cluster", method)
            snaps.rds_describe(snapshot)  # an unknown snapshot fails before any question
            what = f"create Aurora cluster {target!r} from {snapshot}"
        else:
            url = _need(database_url, "--database-url", method)
            uri = _need(s3_uri, "--s3-uri", method)
            if snapshot not in {s.id for s in snaps.dump_list(uri, _environment_of(snapshot))}:
                raise OpsError(
                    f"no snapshot {snapshot!r} under {uri}: `airflow-platform ops snapshots "
                    "--method pg_dump` lists them"
                )
            what = f"replace the contents of the database with {snapshot}"
        if not yes and not typer.confirm(f"{what}?", default=False):
            raise OpsError("not confirmed: nothing changed")
        if method == "rds":
            created = snaps.rds_restore(snapshot, target)
            typer.echo(
                f"restoring into new cluster {created}; point the database Secret at "
                "its endpoint once it is available"
            )
        else:
            snaps.dump_restore(snapshot, uri, url)
            typer.echo(f"restored {snapshot}")
    except OpsError as exc:
        raise _fail(exc) from None


def _environment_of(snapshot: str) -> str:
    """airflow-platform-<environment>-<YYYYmmdd>-<HHMMSS> -> <environment>."""
    parts = snapshot.split("-")
    if snapshot.startswith("airflow-platform-") and len(parts) >= 5:
        return "-".join(parts[2:-2])
    raise OpsError(
        f"{snapshot!r} is not a snapshot id of this platform (airflow-platform-"
        "<environment>-<date>-<time>)"
    )


RetentionDaysOpt = Annotated[
    int, typer.Option("--retention-days", min=30, max=730, help="Keep this many days of history.")
]
TablesOpt = Annotated[
    str, typer.Option("--tables", help='Comma-separated tables to clean; "" = all.')
]
SkipArchiveOpt = Annotated[
    bool,
    typer.Option(
        "--skip-archive/--keep-archive", help="Delete without archive tables (or keep them)."
    ),
]
DropArchivesOpt = Annotated[
    bool, typer.Option("--drop-archives", help="Then drop the archive tables of earlier runs.")
]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Count what would go; delete nothing.")]
LockTimeoutOpt = Annotated[
    int, typer.Option("--lock-timeout", min=1, help="Seconds a statement waits for a lock.")
]
StatementTimeoutOpt = Annotated[
    int, typer.Option("--statement-timeout", min=1, help="Longest statement, in seconds.")
]


def retention_plan(
    retention_days: int,
    tables: str,
    skip_archive: bool,
    drop_archives: bool,
    dry_run: bool,
    lock_timeout: int,
    statement_timeout: int,
):
    from airflow_platform.ops.retention import RetentionPlan

    return RetentionPlan(
        retention_days=retention_days,
        tables=tuple(t.strip() for t in tables.split(",") if t.strip()),
        skip_archive=skip_archive,
        drop_archives=drop_archives,
        dry_run=dry_run,
        lock_timeout_seconds=lock_timeout,
        statement_timeout_seconds=statement_timeout,
    )


def print_retention(database_url: str, plan, env: dict[str, str] | None = None) -> None:
    """Run retention and print its report (row counts before/after) as one JSON line."""
    from airflow_platform.ops.retention import RetentionBusy, RetentionError, run_retention

    try:
        report = run_retention(database_url, plan, env=env)
    except RetentionBusy as exc:
        typer.echo(json.dumps({"skipped": str(exc)}))
        return
    except RetentionError as exc:
        raise _fail(exc) from None
    typer.echo(json.dumps(report.as_dict(), sort_keys=True))


@ops_app.command()
def retention(
    retention_days: RetentionDaysOpt = 60,
    tables: TablesOpt = "",
    skip_archive: SkipArchiveOpt = True,
    drop_archives: DropArchivesOpt = False,
    dry_run: DryRunOpt = False,
    lock_timeout: LockTimeoutOpt = 10,
    statement_timeout: StatementTimeoutOpt = 600,
) -> None:
    """Delete metadata older than the retention period with `airflow db clean` (inside an
    Airflow environment: AIRFLOW__DATABASE__SQL_ALCHEMY_CONN). Never two runs at once."""
    url = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
    if not url:
        raise _fail(OpsError("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN is not set"))
    plan = retention_plan(
        retention_days,
        tables,
        skip_archive,
        drop_archives,
        dry_run,
        lock_timeout,
        statement_timeout,
    )
    print_retention(url, plan)


@ops_app.command("pgbouncer-files", hidden=True)
def pgbouncer_files(
    template: Annotated[Path, typer.Option("--template", help="The [pgbouncer] section.")],
    out: Annotated[Path, typer.Option("--out", help="Where pgbouncer.ini and userlist.txt go.")],
) -> None:
    """Write pgbouncer.ini and its auth_file from AIRFLOW_PLATFORM_DATABASE_URL (the PgBouncer
    pod's init container)."""
    from airflow_platform.ops.pgbouncer import PgBouncerConfigError, write_runtime_files

    url = os.environ.get("AIRFLOW_PLATFORM_DATABASE_URL", "")
    if not url:
        raise _fail(OpsError("AIRFLOW_PLATFORM_DATABASE_URL is not set"))
    try:
        paths = write_runtime_files(url, template, out)
    except PgBouncerConfigError as exc:
        raise _fail(exc) from None
    typer.echo(f"wrote {', '.join(p.name for p in paths)} to {out}")


@ops_app.command(hidden=True)
def probe() -> None:
    """Print the metadata database's view as JSON (run inside an Airflow environment)."""
    from airflow_platform.ops.probe import main

    main()
    sys.stdout.flush()


def register(app: typer.Typer) -> None:
    app.add_typer(ops_app, name="ops")
