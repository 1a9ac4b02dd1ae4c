"""Airflow 3 style: the Task SDK, an explicit schedule and catchup."""

from datetime import datetime

import pyfiglet
from airflow.sdk import dag, task


@dag(schedule="@daily", start_date=datetime(2024, 1, 1), catchup=False, tags=["clean"])
def clean_taskflow():
    @task
    def banner(ds=None, logical_date=None):
        return pyfiglet.figlet_format(f"{ds} {logical_date}")

    banner()


clean_taskflow()
