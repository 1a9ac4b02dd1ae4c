"""24 tasks in four waves of six. Every execution of a task leaves its own marker object
in S3 (results/<dag_id>/<run_id>/<task_id>/<uuid>), so duplicate executions are visible."""

from __future__ import annotations

import time

import pendulum
from airflow.sdk import Variable, dag, task

WAVES = 4
WIDTH = 6


@task
def step(seconds: float, dag_run=None, ti=None) -> None:
    import uuid

    import boto3

    bucket = Variable.get("example_results_bucket")
    key = f"results/{ti.dag_id}/{dag_run.run_id}/{ti.task_id}/{uuid.uuid4().hex}"
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=str(ti.try_number))
    time.sleep(seconds)


@dag(
    dag_id="example_wide_chain",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_tasks=WIDTH,
    tags=["example"],
)
def example_wide_chain():
    previous = None
    for wave in range(WAVES):
        current = [step.override(task_id=f"wave{wave}_task{i}")(2) for i in range(WIDTH)]
        if previous is not None:
            for upstream in previous:
                upstream >> current
        previous = current


example_wide_chain()
