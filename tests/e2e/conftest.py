"""Helpers over the session's local platform (the `platform` fixture lives in tests/conftest.py,
so the e2e and hostile tiers share one platform per session)."""

from __future__ import annotations

import json
import uuid

import pytest

from airflow_platform.local.api import AirflowApi
from airflow_platform.local.platform import LocalPlatform
from airflow_platform.local.services import aws_clients
from airflow_platform.procs import wait_until


@pytest.fixture(scope="session")
def api(platform: LocalPlatform) -> AirflowApi:
    return platform.api()


@pytest.fixture(scope="session")
def bucket(platform: LocalPlatform) -> dict[str, str]:
    data = platform.state.load()
    return {
        "name": data["bucket"],
        "prefix": data["dags_prefix"],
        "endpoint": data["moto_endpoint"],
    }


@pytest.fixture(scope="session")
def s3_client(bucket: dict[str, str]):
    return aws_clients(bucket["endpoint"])[0]


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def dump(obj: object) -> str:
    return json.dumps(obj, indent=1, default=str)[:4000]


class Runs:
    """Trigger DAG runs through the REST API and wait for them, by polling."""

    def __init__(self, api: AirflowApi) -> None:
        self.api = api

    def start(self, dag_id: str, timeout: float = 180) -> str:
        wait_until(lambda: self.api.dag(dag_id), timeout, f"DAG {dag_id} in the API", 0.5)
        self.api.unpause(dag_id)
        run_id = unique("e2e")
        self.api.trigger(dag_id, run_id)
        return run_id

    def finish(self, dag_id: str, run_id: str, timeout: float = 600) -> dict:
        def finished() -> dict | None:
            run = self.api.run(dag_id, run_id)
            return run if run["state"] in ("success", "failed") else None

        return wait_until(finished, timeout, f"{dag_id} run {run_id} to finish", 1.0)  # type: ignore[return-value]


@pytest.fixture(scope="session")
def runs(api: AirflowApi) -> Runs:
    return Runs(api)


@pytest.fixture(scope="session")
def helpers():
    """unique() and dump() for the tests (conftest modules are not importable by name)."""
    return type("Helpers", (), {"unique": staticmethod(unique), "dump": staticmethod(dump)})
