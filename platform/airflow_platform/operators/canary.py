"""The health canary: one trivial task on each worker queue, then a report measuring the
run's schedule-to-finish latency (from when the run was due to the last probe's end).

The report publishes StatsD metrics through Airflow's Stats (`<prefix>.environment_healthy`
as a gauge 1/0 and `<prefix>.canary.schedule_to_finish` as a timer) and the Variable
`airflow_platform_canary` (JSON) that `airflow-platform ops status` shows; an unhealthy
result also fails the run, so it shows in the UI and in the DAG's failure alerts."""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import BaseOperator, Variable

CANARY_VARIABLE = "airflow_platform_canary"
DEFAULT_SCHEDULE = "*/5 * * * *"
# The StatsD metrics the report sends (after Airflow's metrics.statsd_prefix), with their
# StatsD type: the chart's statsd_exporter mapping and the alerts are checked against these.
HEALTHY_METRIC = "environment_healthy"
LATENCY_METRIC = "canary.schedule_to_finish"
STATSD_METRICS = {HEALTHY_METRIC: "g", LATENCY_METRIC: "ms"}


@dataclass(frozen=True)
class CanarySettings:
    schedule: str
    queues: tuple[str, ...]


def canary_settings(environ: dict[str, str] | None = None) -> CanarySettings:
    """From the environment the chart renders (canary.schedule, canary.queues)."""
    env = os.environ if environ is None else environ
    queues = tuple(q.strip() for q in env.get("AIRFLOW_PLATFORM_CANARY_QUEUES", "").split(","))
    return CanarySettings(
        schedule=env.get("AIRFLOW_PLATFORM_CANARY_SCHEDULE") or DEFAULT_SCHEDULE,
        queues=tuple(q for q in queues if q) or ("default",),
    )


def probe_task_id(queue: str) -> str:
    return "probe_" + re.sub(r"[^A-Za-z0-9_]", "_", queue)


class CanaryProbeOperator(BaseOperator):
    """A trivial task that only proves a worker of its queue picked it up and ran it."""

    def execute(self, context: Any) -> dict[str, str]:
        return {
            "queue": str(self.queue),
            "hostname": socket.gethostname(),
            "finished_at": datetime.now(UTC).isoformat(),
        }


class CanaryReportOperator(BaseOperator):
    """Collects the probes' results and publishes the environment's health."""

    def __init__(self, *, queues: Sequence[str], **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", "all_done")  # report missing probes too
        super().__init__(**kwargs)
        self.queues = list(queues)

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.observability.stats import Stats

        ti = context["ti"]
        results = {q: ti.xcom_pull(task_ids=probe_task_id(q)) for q in self.queues}
        finished = [datetime.fromisoformat(r["finished_at"]) for r in results.values() if r]
        dag_run = context["dag_run"]
        due = getattr(dag_run, "run_after", None) or dag_run.logical_date or dag_run.start_date
        healthy = len(finished) == len(self.queues)
        latency = (max(finished) - due).total_seconds() if finished and due else None
        report = {
            "healthy": healthy,
            "latency_seconds": round(latency, 3) if latency is not None else None,
            "queues": self.queues,
            "missing": [q for q, r in results.items() if not r],
            "run_id": dag_run.run_id,
            "at": datetime.now(UTC).isoformat(),
        }
        Stats.gauge(HEALTHY_METRIC, 1 if healthy else 0)
        if latency is not None:
            Stats.timing(LATENCY_METRIC, latency * 1000)
        Variable.set(CANARY_VARIABLE, json.dumps(report))
        self.log.info("canary: %s", report)
        if not healthy:
            raise RuntimeError(f"canary: no worker ran the probe of {report['missing']}")
        return report
