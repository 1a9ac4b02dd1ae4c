"""Tasks on two Celery queues: the default one and `batch` (the local platform's second worker
queue, workers.queues in values-local.yaml), to see each run only on its own workers.

- example_queues:      2 tasks on the default queue and 2 on `batch`, 2 s each.
- example_queue_burst: 6 tasks of 20 s on `batch` alone (3 workers' worth at 2 tasks per
                       worker; the queue has 0..2 workers).

Each task returns where it ran (its Airflow hostname and queue) as its XCom; task instances
also carry `hostname` and `queue` in the REST API.
"""

from __future__ import annotations

import time

import pendulum
from airflow.sdk import dag, task

QUEUE = "batch"


@task
def where(seconds: float, ti=None) -> dict:
    time.sleep(seconds)
    return {"hostname": ti.hostname, "queue": ti.queue}


@dag(
    dag_id="example_queues",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "scaling"],
)
def two_queues():
    for i in range(2):
        where.override(task_id=f"default_{i}")(2)
        where.override(task_id=f"batch_{i}", queue=QUEUE)(2)


@dag(
    dag_id="example_queue_burst",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_tasks=6,
    tags=["example", "scaling"],
)
def queue_burst():
    for i in range(6):
        where.override(task_id=f"batch_{i:02d}", queue=QUEUE)(20)


two_queues()
queue_burst()
