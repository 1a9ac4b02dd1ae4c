"""A DAG file that cannot be imported: the import-error test uploads it, nothing else."""

from airflow.sdk import dag_that_does_not_exist  # noqa: F401 - the point of this file
