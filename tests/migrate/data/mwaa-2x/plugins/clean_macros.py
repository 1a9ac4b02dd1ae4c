"""A plugin Airflow 3 still loads: macros only."""

from airflow.plugins_manager import AirflowPlugin


def fiscal_quarter(ds: str) -> str:
    return f"Q{(int(ds[5:7]) - 1) // 3 + 1}"


class FiscalMacros(AirflowPlugin):
    name = "fiscal_macros"
    macros = [fiscal_quarter]
