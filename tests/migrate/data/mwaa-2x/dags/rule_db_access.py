"""MIG020: task code that queries the metadata database."""

from datetime import datetime

from airflow.models import DagRun
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG
from airflow.utils.session import create_session


def count_runs():
    with create_session() as session:
        return session.query(DagRun).count()


def last_runs():
    return DagRun.find(dag_id="rule_db_access")


with DAG("rule_db_access", schedule=None, start_date=datetime(2024, 1, 1)):
    PythonOperator(task_id="count", python_callable=count_runs)
    PythonOperator(task_id="last", python_callable=last_runs)
