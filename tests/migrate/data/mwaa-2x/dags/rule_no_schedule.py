"""AIR002: no schedule; Airflow 2 ran it daily, Airflow 3 never schedules it."""

from datetime import datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG("rule_no_schedule", start_date=datetime(2024, 1, 1), catchup=False):
    EmptyOperator(task_id="noop")
