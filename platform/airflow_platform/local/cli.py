"""`airflow-platform local up | status | down`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

local_app = typer.Typer(
    help="Run the whole platform on this machine: the chart's components as processes.",
    no_args_is_help=True,
)

StateOpt = Annotated[
    Path,
    typer.Option(
        "--state-dir",
        envvar="AIRFLOW_PLATFORM_LOCAL_STATE",
        help="Where PIDs, logs, data and generated keys are kept.",
    ),
]


def _console():
    from rich.console import Console

    return Console(highlight=False)


def _platform(state_dir: Path, **kwargs):
    from airflow_platform.local.platform import LocalPlatform

    console = _console()
    return console, LocalPlatform(
        state_dir, progress=lambda msg: console.print(f"[dim]•[/dim] {msg}"), **kwargs
    )


def _fail(console, exc: Exception) -> None:
    console.print(f"[bold red]error:[/bold red] {exc}")
    raise typer.Exit(1)


@local_app.command()
def up(
    state_dir: StateOpt = Path(".local-state"),
    api_port: Annotated[
        int | None, typer.Option(help="Port of the UI/API on 127.0.0.1 (default: a free one).")
    ] = None,
    values: Annotated[
        list[Path] | None,
        typer.Option("--values", "-f", help="Extra chart values files, after the local one."),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for every component.")] = 600,
) -> None:
    """Start everything (safe to re-run: running components are kept)."""
    from airflow_platform.local.mapping import MappingError
    from airflow_platform.local.platform import PlatformError
    from airflow_platform.local.rendering import RenderError
    from airflow_platform.local.services import ServiceError

    for path in values or []:
        if not path.is_file():
            _fail(_console(), ValueError(f"--values {path}: no such file"))
    console, platform = _platform(state_dir, api_port=api_port, values_files=values or [])
    try:
        result = platform.up(timeout=timeout)
    except (PlatformError, ServiceError, RenderError, MappingError, TimeoutError) as exc:
        _fail(console, exc)
        return
    endpoint = result.moto_endpoint
    console.print(
        f"\n[bold green]Airflow is up[/bold green] in {result.seconds:.0f}s "
        f"({len(result.started)} started, {len(result.kept)} already running)\n"
        f"  UI:       {result.api_url}   (sign in through the OpenID Connect provider)\n"
        f"  provider: {result.issuer}   (local users below; passwords in "
        f"{platform.state.root}/secrets.json)"
    )
    for user in result.users:
        console.print(
            f"    {user.name:<8} {user.password}   role {user.role:<7} "
            f"groups {', '.join(user.groups) or '-'}"
        )
    console.print(
        f"  API:      a token for scripts: `airflow-platform local token`, then\n"
        f'            curl -H "Authorization: Bearer $TOKEN" {result.api_url}/api/v2/dags\n'
        f"  bucket:   s3://{result.bucket}/{result.dags_prefix}  (moto at {endpoint})\n"
        f"  upload a DAG:\n"
        f"    airflow-platform local upload my_dag.py   (to s3://{result.bucket}/"
        f"{result.dags_prefix})"
    )
    console.print("  logs:     one folder per MWAA log group, a file per process:")
    for group, folder in result.log_groups.items():
        console.print(f"    {group:<28} {folder}/")
    console.print(
        f"    others (services, watchdog)  {platform.state.logs}/<name>.log\n"
        f"  status:   airflow-platform local status    stop: airflow-platform local down"
    )


@local_app.command()
def upload(
    files: Annotated[list[Path], typer.Argument(help="DAG files (or folders) to upload.")],
    state_dir: StateOpt = Path(".local-state"),
    prefix: Annotated[
        str, typer.Option(help="Key prefix under the DAGs prefix, e.g. team_a/.")
    ] = "",
) -> None:
    """Put DAG files into the local platform's DAG bucket (moto), as `aws s3 cp` would into
    MWAA's; dagsync picks them up within about a second."""
    from airflow_platform.local.services import put_files

    console, platform = _platform(state_dir)
    data = platform.state.load()
    if not data.get("moto_endpoint"):
        _fail(console, RuntimeError(f"no local platform in {state_dir}: run `local up` first"))
        return
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        _fail(console, ValueError(f"no such file: {', '.join(missing)}"))
    keys = put_files(data["moto_endpoint"], data["bucket"], data["dags_prefix"] + prefix, files)
    for key in keys:
        console.print(f"uploaded s3://{data['bucket']}/{key}")


@local_app.command()
def token(
    user: Annotated[
        str | None,
        typer.Option(help="A user of the local OpenID Connect provider (default: its admin)."),
    ] = None,
    state_dir: StateOpt = Path(".local-state"),
) -> None:
    """Print a REST API token for a local user: the sign-in a browser does, without one."""
    import httpx

    from airflow_platform.local.oidc import USERS

    console, platform = _platform(state_dir)
    if user is not None and user not in {u.name for u in USERS}:
        _fail(console, ValueError(f"no local user {user!r}: {', '.join(u.name for u in USERS)}"))
    try:
        print(platform.api(user).token())
    except (RuntimeError, OSError, httpx.HTTPError) as exc:
        _fail(console, exc)


@local_app.command()
def status(state_dir: StateOpt = Path(".local-state")) -> None:
    """Each component, its PID and its health. Exit code 1 when something is unhealthy."""
    from rich.table import Table

    console, platform = _platform(state_dir)
    rows = platform.status()
    if not any(r["pid"] for r in rows):
        console.print(f"nothing is running (state: {platform.state.root})")
        raise typer.Exit(1)
    table = Table("component", "pid", "process", "health", "detail", "log")
    for row in rows:
        table.add_row(
            row["name"],
            str(row["pid"] or "-"),
            "[green]alive[/green]" if row["alive"] else "[red]dead[/red]",
            "[green]healthy[/green]" if row["healthy"] else "[red]unhealthy[/red]",
            row["detail"],
            row.get("log", ""),
        )
    console.print(table)
    if not all(r["healthy"] for r in rows):
        raise typer.Exit(1)


@local_app.command()
def down(
    state_dir: StateOpt = Path(".local-state"),
    wipe: Annotated[
        bool, typer.Option("--wipe", help="Also delete the state (database, logs, keys).")
    ] = False,
) -> None:
    """Stop every process `up` started, by PID; keep the state unless --wipe."""
    console, platform = _platform(state_dir)
    stopped = platform.down(wipe=wipe)
    kept = "" if wipe else f"; state kept in {platform.state.root} (--wipe deletes it)"
    console.print(f"stopped {len(stopped)} process(es){kept}")


@local_app.command()
def drain(
    worker: Annotated[str, typer.Argument(help="A worker process: worker-1, worker-batch-0...")],
    state_dir: StateOpt = Path(".local-state"),
) -> None:
    """Scale one worker in as the autoscaler does: SIGTERM to its Celery main process, which
    finishes its running tasks, then exits; the watchdog does not restart it."""
    from airflow_platform.local import queues

    console, platform = _platform(state_dir)
    # The default queue's workers and every worker queue's (worker-<queue>-N).
    workers = {**platform.workers(), **queues.workers(platform.state, platform.sup)}
    if worker not in workers:
        _fail(console, ValueError(f"no worker {worker!r}; running: {', '.join(workers) or 'none'}"))
    try:
        pid = platform.drain_worker(worker, reason="local drain")
    except RuntimeError as exc:
        _fail(console, exc)
        return
    console.print(f"{worker}: SIGTERM sent to pid {pid}; it exits once its running tasks end")


@local_app.command()
def retention(
    state_dir: StateOpt = Path(".local-state"),
    retention_days: Annotated[int, typer.Option("--retention-days", min=30, max=730)] = 60,
    tables: Annotated[str, typer.Option("--tables", help='Comma-separated; "" = all.')] = "",
    skip_archive: Annotated[bool, typer.Option("--skip-archive/--keep-archive")] = True,
    drop_archives: Annotated[bool, typer.Option("--drop-archives")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run")] = False,
    lock_timeout: Annotated[int, typer.Option("--lock-timeout", min=1)] = 10,
    statement_timeout: Annotated[int, typer.Option("--statement-timeout", min=1)] = 600,
) -> None:
    """Run the retention CronJob's job now against the local platform's database (the
    scheduler's environment); prints row counts before and after as JSON."""
    from airflow_platform.ops.cli import print_retention, retention_plan

    console, platform = _platform(state_dir)
    env = platform.airflow_env()
    if env is None:
        _fail(console, RuntimeError(f"no local platform in {state_dir}: run `local up` first"))
        return
    plan = retention_plan(
        retention_days,
        tables,
        skip_archive,
        drop_archives,
        dry_run,
        lock_timeout,
        statement_timeout,
    )
    print_retention(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], plan, env={**os.environ, **env})


def register(app: typer.Typer) -> None:
    app.add_typer(local_app, name="local")
