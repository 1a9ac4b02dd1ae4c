"""Reads a connection and a variable from the secrets backend (the Vault API) and writes
an object to S3.

The DAG id is this file's name, so the same code uploaded under another name is another
DAG. The object lands at s3://<example_results_bucket>/results/<dag_id>/<run_id>.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import pendulum
from airflow.sdk import BaseHook, Variable, dag, task

DAG_ID = Path(__file__).stem


@dag(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "vault", "s3"],
)
def vault_to_s3():
    @task
    def write_report(dag_run=None) -> str:
        import boto3  # credentials and endpoint from the environment (IRSA in a pod)

        conn = BaseHook.get_connection("example_api")
        bucket = Variable.get("example_results_bucket")
        report = {
            "dag_id": DAG_ID,
            "run_id": dag_run.run_id,
            "connection": {"host": conn.host, "login": conn.login, "port": conn.port},
            "greeting": Variable.get("example_greeting"),
        }
        key = f"results/{DAG_ID}/{dag_run.run_id}.json"
        boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=json.dumps(report))
        return f"s3://{bucket}/{key}"

    write_report()


vault_to_s3()
