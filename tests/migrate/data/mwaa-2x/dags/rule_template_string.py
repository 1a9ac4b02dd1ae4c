"""MIG011: a Jinja template in a Python string reads removed context variables."""

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

with DAG("rule_template_string", schedule=None, start_date=datetime(2024, 1, 1)):
    BashOperator(
        task_id="copy",
        bash_command="aws s3 cp s3://in/{{ yesterday_ds }}/ s3://out/{{ execution_date }}/",
    )
