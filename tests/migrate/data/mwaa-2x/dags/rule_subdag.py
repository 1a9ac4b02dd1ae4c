"""MIG030: a SubDAG."""

from datetime import datetime

from airflow import DAG
from airflow.operators.subdag import SubDagOperator

with DAG("rule_subdag", schedule=None, start_date=datetime(2024, 1, 1)) as parent:
    child = DAG("rule_subdag.child", schedule=None, start_date=datetime(2024, 1, 1))
    SubDagOperator(task_id="child", subdag=child)
