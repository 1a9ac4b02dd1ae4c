"""Waiting for a service to come up, and the error that says why it did not."""

from __future__ import annotations

import time
from collections.abc import Callable

from airflow_platform.local.supervisor import Supervisor


class ServiceError(RuntimeError):
    """A service could not start; the message says why and what to do."""


def poll(
    sup: Supervisor, name: str, ready: Callable[[], object], timeout: float, what: str
) -> None:
    """Poll `ready` until truthy; a process that dies meanwhile fails at once, with the
    tail of its log (wait_until would keep polling a corpse until the timeout)."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if not sup.alive(name):
            raise ServiceError(
                f"{name} exited while starting; last lines of {sup.state.log(name)}:\n"
                f"{sup.log_tail(name)}"
            )
        try:
            if ready():
                return
        except Exception as exc:  # not answering yet
            last_error = exc
        time.sleep(0.2)
    detail = f" (last error: {last_error!r})" if last_error else ""
    raise ServiceError(
        f"timed out after {timeout:.0f}s waiting for {what}{detail}; last lines of "
        f"{sup.state.log(name)}:\n{sup.log_tail(name)}"
    )
