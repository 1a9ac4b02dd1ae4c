"""Trigger a DAG in another airflow-platform environment through its REST API (the
counterpart of MWAA's MwaaTriggerDagRunOperator).

The other environment is an Airflow connection: host = its API server URL (scheme and
port included), login/password = a user of its auth manager allowed to trigger the DAG.
The operator gets a token from `/auth/token` (SimpleAuthManager and FAB both serve it),
then POSTs `/api/v2/dags/<dag_id>/dagRuns`; with `wait_for_completion` it polls the run
until it ends and fails when the remote run failed."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import requests
from airflow.sdk import BaseHook, BaseOperator


class PlatformTriggerDagRunOperator(BaseOperator):
    template_fields: Sequence[str] = ("trigger_dag_id", "trigger_run_id", "conf")

    def __init__(
        self,
        *,
        environment_conn_id: str,
        trigger_dag_id: str,
        trigger_run_id: str | None = None,
        conf: dict[str, Any] | None = None,
        wait_for_completion: bool = False,
        poke_interval: float = 5.0,
        timeout: float = 3600.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.environment_conn_id = environment_conn_id
        self.trigger_dag_id = trigger_dag_id
        self.trigger_run_id = trigger_run_id
        self.conf = conf or {}
        self.wait_for_completion = wait_for_completion
        self.poke_interval = poke_interval
        self.timeout = timeout

    def _base_url(self, conn: Any) -> str:
        host = (conn.host or "").rstrip("/")
        if not host:
            raise ValueError(f"connection {self.environment_conn_id!r} has no host (API URL)")
        if "://" not in host:
            host = f"{conn.schema or 'https'}://{host}"
        if conn.port and host.count(":") < 2:
            host = f"{host}:{conn.port}"
        return host

    def _token(self, base: str, conn: Any) -> str:
        response = requests.post(
            f"{base}/auth/token",
            json={"username": conn.login, "password": conn.password},
            timeout=30,
        )
        if response.status_code not in (200, 201):
            raise RuntimeError(
                f"login to {base} as {conn.login!r} failed ({response.status_code}): "
                f"{response.text[:300]}"
            )
        return str(response.json()["access_token"])

    def execute(self, context: Any) -> dict[str, Any]:
        conn = BaseHook.get_connection(self.environment_conn_id)
        base = self._base_url(conn)
        headers = {"Authorization": f"Bearer {self._token(base, conn)}"}
        body: dict[str, Any] = {"logical_date": None, "conf": self.conf}
        if self.trigger_run_id:
            body["dag_run_id"] = self.trigger_run_id
        url = f"{base}/api/v2/dags/{self.trigger_dag_id}/dagRuns"
        response = requests.post(url, json=body, headers=headers, timeout=30)
        if response.status_code != 200:
            raise RuntimeError(
                f"triggering {self.trigger_dag_id} at {base} failed ({response.status_code}): "
                f"{response.text[:300]}"
            )
        run = response.json()
        self.log.info("triggered %s run %s at %s", self.trigger_dag_id, run["dag_run_id"], base)
        if not self.wait_for_completion:
            return run
        deadline = time.monotonic() + self.timeout
        while run["state"] not in ("success", "failed"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.trigger_dag_id} run {run['dag_run_id']} still "
                                   f"{run['state']} after {self.timeout:.0f}s")  # fmt: skip
            time.sleep(self.poke_interval)
            polled = requests.get(f"{url}/{run['dag_run_id']}", headers=headers, timeout=30)
            polled.raise_for_status()
            run = polled.json()
        if run["state"] == "failed":
            raise RuntimeError(f"{self.trigger_dag_id} run {run['dag_run_id']} failed at {base}")
        return run
