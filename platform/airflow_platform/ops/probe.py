"""`airflow-platform ops probe`: run where Airflow's configuration is (a scheduler pod, or
the local platform's scheduler environment), print what only the metadata database knows
as one JSON object: the schedulers' latest heartbeat, the DAG import error count and the
canary's last result. `ops status` runs it through the exec API (or locally)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

CANARY_VARIABLE = "airflow_platform_canary"


def probe() -> dict[str, Any]:
    from airflow.configuration import conf
    from airflow.jobs.job import Job
    from airflow.models.errors import ParseImportError
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    threshold = conf.getint("scheduler", "scheduler_health_check_threshold", fallback=30)
    with create_session() as session:
        latest = session.scalar(
            select(func.max(Job.latest_heartbeat)).where(
                Job.job_type == "SchedulerJob", Job.state == "running"
            )
        )
        errors = session.scalar(select(func.count()).select_from(ParseImportError)) or 0
        row = session.scalar(select(Variable).where(Variable.key == CANARY_VARIABLE))
        canary_text = row.val if row is not None else None
    now = datetime.now(UTC)
    if latest is None:
        heartbeat = {"status": "unhealthy", "latest": None, "detail": "no running scheduler"}
    else:
        age = (now - latest).total_seconds()
        heartbeat = {
            "status": "healthy" if age <= threshold else "unhealthy",
            "latest": latest.isoformat(),
            "detail": f"{age:.0f}s ago (threshold {threshold}s)",
        }
    canary = None
    if canary_text:
        try:
            canary = json.loads(canary_text)
        except ValueError:
            canary = {"unreadable": canary_text[:200]}
    return {"heartbeat": heartbeat, "import_errors": int(errors), "canary": canary}


def main() -> None:
    print(json.dumps(probe(), default=str))


if __name__ == "__main__":
    main()
