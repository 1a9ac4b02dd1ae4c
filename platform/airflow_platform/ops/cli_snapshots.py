"""`ops snapshot create`, `ops snapshots` and `ops restore`: metadata snapshots (Aurora
through the RDS API, or pg_dump to S3) taken before upgrades and restored on request."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from airflow_platform.ops.errors import OpsError
from airflow_platform.ops.options import fail

app = typer.Typer()  # its commands join `ops` (see ops/cli.py)
snapshot_app = typer.Typer(help="Take a metadata snapshot.", no_args_is_help=True)
app.add_typer(snapshot_app, name="snapshot")

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
        raise fail(exc) from None
    typer.echo(f"snapshot {found.id}: {found.status} ({found.where})")


@app.command()
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
        raise fail(exc) from None
    if as_json:
        typer.echo(json.dumps([asdict(s) for s in found], indent=2))
        return
    table = Table("snapshot", "created", "status", "size", "where")
    for s in found:
        table.add_row(s.id, s.created, s.status, s.size, s.where)
    Console(highlight=False).print(table)


@app.command()
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
        raise fail(exc) from None


def _environment_of(snapshot: str) -> str:
    """airflow-platform-<environment>-<YYYYmmdd>-<HHMMSS> -> <environment>."""
    parts = snapshot.split("-")
    if snapshot.startswith("airflow-platform-") and len(parts) >= 5:
        return "-".join(parts[2:-2])
    raise OpsError(
        f"{snapshot!r} is not a snapshot id of this platform (airflow-platform-"
        "<environment>-<date>-<time>)"
    )
