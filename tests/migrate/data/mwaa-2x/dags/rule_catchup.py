"""MIG033: scheduled, catchup not set: Airflow 2 backfilled, Airflow 3 does not."""

from datetime import datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG("rule_catchup", schedule="@hourly", start_date=datetime(2024, 1, 1)):
    EmptyOperator(task_id="noop")
