"""MIG001: airflow.datasets is gone in Airflow 3 (ruff only calls it a warning)."""

from datetime import datetime

from airflow.datasets import Dataset
from airflow.sdk import DAG

orders = Dataset("s3://warehouse/orders")

with DAG("rule_import_error", schedule=[orders], start_date=datetime(2024, 1, 1)):
    pass
