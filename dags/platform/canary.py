"""The platform's health canary (chart value canary.enabled; see
airflow_platform.operators.canary): one trivial task on each worker queue, then a report
with the schedule-to-finish latency and environment_healthy."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG

from airflow_platform.operators.canary import (
    CanaryProbeOperator,
    CanaryReportOperator,
    canary_settings,
    probe_task_id,
)

settings = canary_settings()

with DAG(
    dag_id="airflow_platform_canary",
    schedule=settings.schedule,
    catchup=False,  # a canary reports the present: a missed run is not worth running late
    max_active_runs=1,
    is_paused_upon_creation=False,
    dagrun_timeout=timedelta(minutes=10),
    default_args={"retries": 0, "execution_timeout": timedelta(minutes=5)},
    tags=["airflow-platform"],
    doc_md=__doc__,
) as dag:
    probes = [
        CanaryProbeOperator(task_id=probe_task_id(queue), queue=queue) for queue in settings.queues
    ]
    probes >> CanaryReportOperator(task_id="report", queues=settings.queues)
