"""airflow-platform: a self-hosted Amazon MWAA on Kubernetes."""

__version__ = "0.1.0"
