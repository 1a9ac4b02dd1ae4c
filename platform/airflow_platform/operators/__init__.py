"""The platform's Airflow operators, importable by DAGs wherever the platform package is
installed (the image, the local platform's environment):

    from airflow_platform.operators import CanaryProbeOperator, CanaryReportOperator
    from airflow_platform.operators import PlatformTriggerDagRunOperator

Imports are lazy so that `airflow_platform` itself never loads Airflow."""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "CanaryProbeOperator": "airflow_platform.operators.canary",
    "CanaryReportOperator": "airflow_platform.operators.canary",
    "canary_settings": "airflow_platform.operators.canary",
    "PlatformTriggerDagRunOperator": "airflow_platform.operators.cross_environment",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(module), name)
