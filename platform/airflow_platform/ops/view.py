"""`ops status` as a rich table."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from airflow_platform.ops.model import EnvironmentStatus

COLOURS = {"AVAILABLE": "green", "HIBERNATED": "cyan"} | dict.fromkeys(
    ("UPDATING", "CREATING", "CREATING_SNAPSHOT", "ROLLING_BACK"), "yellow"
)


def show(status: EnvironmentStatus, console: Console) -> None:
    colour = COLOURS.get(status.status, "red")
    console.print(
        f"[bold]{status.environment}[/bold] ({status.source}): "
        f"[bold {colour}]{status.status}[/bold {colour}]  revision {status.revision or '-'}, "
        f"release {status.release_status}, last update {status.last_update or '-'}"
    )
    table = Table("component", "ready", "detail")
    for c in status.components:
        mark = "green" if c.ok else "red"
        table.add_row(c.name, f"[{mark}]{c.ready}/{c.desired}[/{mark}]", c.detail)
    console.print(table)
    w = status.workers
    if w:
        paused = " (scaler paused)" if w.paused else ""
        console.print(f"workers: {w.current} ready, range {w.minimum}..{w.maximum} "
                      f"by {w.scaler}{paused}")  # fmt: skip
    hb = status.heartbeat
    console.print(f"scheduler heartbeat: {hb.status}" + (f", {hb.latest}" if hb.latest else "")
                  + (f" ({hb.detail})" if hb.detail else ""))  # fmt: skip
    console.print(f"migrations: {status.migrations}")
    errors = "unknown" if status.import_errors is None else str(status.import_errors)
    console.print(f"DAG import errors: {errors}")
    canary = status.canary
    if canary:
        console.print(
            f"canary: {'healthy' if canary.get('healthy') else 'UNHEALTHY'} at "
            f"{canary.get('at')}, schedule-to-finish {canary.get('latency_seconds')} s "
            f"on {', '.join(canary.get('queues', []))}"
        )
    else:
        console.print("canary: no result")
    for note in status.notes:
        console.print(f"[dim]note: {note}[/dim]", soft_wrap=True)
