"""Airflow 3 readiness of an MWAA 2.x environment: `airflow-platform migrate check`."""
