"""A small client for the Airflow REST API of the local platform (token login)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from airflow_platform.local.http import request


class ApiError(RuntimeError):
    pass


class AirflowApi:
    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        login: Callable[[], str] | None = None,
    ) -> None:
        """`login` returns a fresh API token (e.g. through the OpenID Connect provider);
        without it the token comes from /auth/token with the user name and password (the
        SimpleAuthManager's users, FAB's database users)."""
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self.login = login
        self._token: str | None = None
        self._token_at = 0.0

    def token(self) -> str:
        if self._token is None or time.monotonic() - self._token_at > 600:
            if self.login is not None:
                self._token = self.login()
                self._token_at = time.monotonic()
                return self._token
            status, body = request(
                "POST",
                f"{self.base_url}/auth/token",
                {"username": self.username, "password": self.password},
            )
            if status not in (200, 201) or not isinstance(body, dict):
                raise ApiError(f"login as {self.username} failed ({status}): {body}")
            self._token = body["access_token"]
            self._token_at = time.monotonic()
        return self._token

    def call(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200,)) -> Any:
        headers = {"Authorization": f"Bearer {self.token()}"}
        status, data = request(method, f"{self.base_url}{path}", body, headers, timeout=30)
        if status not in ok:
            raise ApiError(f"{method} {path} -> {status}: {data}")
        return data

    def get(self, path: str) -> Any:
        return self.call("GET", path)

    # --- conveniences used by the CLI, the tests and the benchmarks ------------------------
    def health(self) -> dict[str, Any]:
        status, body = request("GET", f"{self.base_url}/api/v2/monitor/health", timeout=5)
        if status != 200 or not isinstance(body, dict):
            raise ApiError(f"health -> {status}: {body}")
        return body

    def dag(self, dag_id: str) -> dict[str, Any] | None:
        headers = {"Authorization": f"Bearer {self.token()}"}
        status, body = request("GET", f"{self.base_url}/api/v2/dags/{dag_id}", None, headers)
        if status == 404:
            return None
        if status != 200:
            raise ApiError(f"GET dag {dag_id} -> {status}: {body}")
        return body

    def unpause(self, dag_id: str) -> None:
        self.call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})

    def trigger(self, dag_id: str, run_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"logical_date": None}
        if run_id:
            body["dag_run_id"] = run_id
        return self.call("POST", f"/api/v2/dags/{dag_id}/dagRuns", body, ok=(200,))

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = self.get(
                f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=100&offset={offset}"
            )
            out += page["task_instances"]
            offset += len(page["task_instances"])
            if not page["task_instances"] or offset >= page["total_entries"]:
                return out

    def import_errors(self) -> list[dict[str, Any]]:
        return self.get("/api/v2/importErrors?limit=100")["import_errors"]
