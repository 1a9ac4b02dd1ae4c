"""The one error type of `airflow-platform ops`: its message names what to fix."""

from __future__ import annotations


class OpsError(RuntimeError):
    """Something the user must fix; nothing was changed."""
