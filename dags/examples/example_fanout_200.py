"""One task fanning out to 200 parallel no-op tasks: a scheduling and queueing workload."""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

FAN_OUT = 200


@task
def leaf() -> None:
    pass


@dag(
    dag_id="example_fanout_200",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_tasks=FAN_OUT,
    tags=["example", "bench"],
)
def example_fanout_200():
    @task
    def start() -> None:
        pass

    start() >> [leaf.override(task_id=f"leaf_{i:03d}")() for i in range(FAN_OUT)]


example_fanout_200()
