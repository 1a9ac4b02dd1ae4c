"""MIG010: task code that reads context keys Airflow 3 removed."""

from datetime import datetime

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, get_current_context, task


def report(**kwargs):
    return kwargs["execution_date"], kwargs.get("next_ds")


def by_name(prev_ds, ds):
    return prev_ds, ds


@task
def current():
    context = get_current_context()
    return context["tomorrow_ds"]


with DAG("rule_context_keys", schedule=None, start_date=datetime(2024, 1, 1)):
    PythonOperator(task_id="report", python_callable=report)
    PythonOperator(task_id="by_name", python_callable=by_name)
    current()
