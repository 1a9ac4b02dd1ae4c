"""MIG004 + AIR312: works on Airflow 3 through a deprecated alias."""

from datetime import datetime

from airflow.operators.bash import BashOperator
from airflow.sdk import DAG

with DAG("rule_deprecated_import", schedule=None, start_date=datetime(2024, 1, 1)):
    BashOperator(task_id="hello", bash_command="echo hello")
