"""`ops retention` and the commands the chart's pods run against the metadata database:
`ops pgbouncer-files` (PgBouncer's init container) and `ops probe` (read by `ops status`)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from airflow_platform.ops.errors import OpsError
from airflow_platform.ops.options import fail, retention_options

if TYPE_CHECKING:
    from airflow_platform.ops.retention import RetentionPlan

app = typer.Typer()  # its commands join `ops` (see ops/cli.py)


def print_retention(
    database_url: str, plan: RetentionPlan, env: dict[str, str] | None = None
) -> None:
    """Run retention and print its report (row counts before/after) as one JSON line."""
    from airflow_platform.ops.retention import RetentionBusy, RetentionError, run_retention

    try:
        report = run_retention(database_url, plan, env=env)
    except RetentionBusy as exc:
        typer.echo(json.dumps({"skipped": str(exc)}))
        return
    except RetentionError as exc:
        raise fail(exc) from None
    typer.echo(json.dumps(report.as_dict(), sort_keys=True))


@app.command()
@retention_options
def retention(plan: RetentionPlan) -> None:
    """Delete metadata older than the retention period with `airflow db clean` (inside an
    Airflow environment: AIRFLOW__DATABASE__SQL_ALCHEMY_CONN). Never two runs at once."""
    url = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
    if not url:
        raise fail(OpsError("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN is not set"))
    print_retention(url, plan)


@app.command("pgbouncer-files", hidden=True)
def pgbouncer_files(
    template: Annotated[Path, typer.Option("--template", help="The [pgbouncer] section.")],
    out: Annotated[Path, typer.Option("--out", help="Where pgbouncer.ini and userlist.txt go.")],
) -> None:
    """Write pgbouncer.ini and its auth_file from AIRFLOW_PLATFORM_DATABASE_URL (the PgBouncer
    pod's init container)."""
    from airflow_platform.ops.pgbouncer import PgBouncerConfigError, write_runtime_files

    url = os.environ.get("AIRFLOW_PLATFORM_DATABASE_URL", "")
    if not url:
        raise fail(OpsError("AIRFLOW_PLATFORM_DATABASE_URL is not set"))
    try:
        paths = write_runtime_files(url, template, out)
    except PgBouncerConfigError as exc:
        raise fail(exc) from None
    typer.echo(f"wrote {', '.join(p.name for p in paths)} to {out}")


@app.command(hidden=True)
def probe() -> None:
    """Print the metadata database's view as JSON (run inside an Airflow environment)."""
    from airflow_platform.ops.probe import main

    main()
    sys.stdout.flush()
