"""Classic operators from the standard provider, templates that Airflow 3 still renders."""

from datetime import datetime, timedelta

from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

from common.naming import table_name


def load(**context):
    print(context["logical_date"], context["data_interval_end"], table_name("orders"))


with DAG(
    dag_id="clean_classic",
    schedule=timedelta(hours=6),
    start_date=datetime(2024, 1, 1),
    catchup=True,
    template_searchpath=["/usr/local/airflow/dags/sql"],
):
    extract = BashOperator(
        task_id="extract",
        bash_command="echo {{ ds }} {{ macros.ds_add(ds, -1) }} {{ data_interval_end | ds }}",
    )
    extract >> PythonOperator(task_id="load", python_callable=load)
