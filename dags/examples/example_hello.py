"""The smallest useful DAG: two Python tasks, no schedule."""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task


@dag(
    dag_id="example_hello",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example"],
)
def example_hello():
    @task
    def hello() -> str:
        return "hello"

    @task
    def world(greeting: str) -> str:
        print(f"{greeting}, world")
        return f"{greeting}, world"

    world(hello())


example_hello()
