"""`python -m airflow_platform.dagsync` runs the same command as `airflow-platform dagsync`."""

import typer

from airflow_platform.dagsync.cli import dagsync

if __name__ == "__main__":
    typer.run(dagsync)
