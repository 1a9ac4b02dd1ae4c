"""MIG001 (SyntaxError): an airflow DAG file that does not parse."""

from airflow.sdk import DAG

with DAG("rule_syntax_error", schedule=None:
    pass
