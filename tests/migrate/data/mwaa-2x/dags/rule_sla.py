"""MIG031: SLAs in default_args."""

from datetime import datetime, timedelta

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

default_args = {"owner": "data", "sla": timedelta(hours=1)}

with DAG(
    "rule_sla", schedule=None, start_date=datetime(2024, 1, 1), default_args=default_args
):
    EmptyOperator(task_id="noop")
