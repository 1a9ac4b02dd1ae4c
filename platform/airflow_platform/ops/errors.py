"""The one error type of `airflow-platform ops`: its message names what to fix."""

from __future__ import annotations


class OpsError(RuntimeError):
    """Something the user must fix; nothing was changed. `status` is the Kubernetes API's
    HTTP status when the API refused the request."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
