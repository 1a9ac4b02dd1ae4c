"""Bursts of parallel sleeping tasks, to watch the workers scale out and back in.

- example_burst:       12 tasks of 20 s at once (4 workers' worth at 3 tasks per worker).
- example_worker_loss: 3 tasks of 30 s, for losing a worker mid-task.

Every execution of a task leaves its own record in S3 before it sleeps
(results/<dag_id>/<run_id>/<task_id>/<uuid>, JSON with the try number and the worker's
hostname), so a task run twice, or retried, is visible. Each task may be retried once.

Triggered with the conf {"hold": true}, each task runs until the object
gates/<dag_id>/<run_id>/release exists instead of sleeping (at most `hold_max_seconds`,
default 900): a test then decides when the running tasks end.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pendulum
from airflow.sdk import Variable, dag, task


@task(retries=1, retry_delay=timedelta(seconds=3))
def sleeper(seconds: float, dag_run=None, ti=None) -> None:
    import uuid

    import boto3

    bucket = Variable.get("example_results_bucket")
    key = f"results/{ti.dag_id}/{dag_run.run_id}/{ti.task_id}/{uuid.uuid4().hex}"
    record = {"try_number": ti.try_number, "hostname": getattr(ti, "hostname", None)}
    s3 = boto3.client("s3")
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(record))
    conf = dag_run.conf or {}
    if not conf.get("hold"):
        time.sleep(seconds)
        return
    release = f"gates/{ti.dag_id}/{dag_run.run_id}/release"
    deadline = time.monotonic() + float(conf.get("hold_max_seconds", 900))
    while time.monotonic() < deadline:
        if s3.list_objects_v2(Bucket=bucket, Prefix=release).get("KeyCount"):
            return
        time.sleep(0.5)
    raise TimeoutError(f"{release} did not appear in s3://{bucket}")


def burst(dag_id: str, tasks: int, seconds: float) -> None:
    @dag(
        dag_id=dag_id,
        schedule=None,
        start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
        catchup=False,
        max_active_tasks=tasks,
        tags=["example", "scaling"],
    )
    def parallel_sleepers():
        for i in range(tasks):
            sleeper.override(task_id=f"sleep_{i:02d}")(seconds)

    parallel_sleepers()


burst("example_burst", tasks=12, seconds=20)
burst("example_worker_loss", tasks=3, seconds=30)
