"""One local platform for the whole e2e session (a few minutes, not one per test)."""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_platform.local.api import AirflowApi
from airflow_platform.local.platform import LocalPlatform
from airflow_platform.local.services import aws_clients
from airflow_platform.procs import wait_until


@pytest.fixture(scope="session")
def state_dir() -> Iterator[Path]:
    # Not under pytest's 0700 tmp dirs: PostgreSQL runs as `nobody` when we are root.
    root = Path(tempfile.mkdtemp(prefix="airflow-platform-e2e-"))
    root.chmod(0o755)
    yield root / "state"
    shutil.rmtree(root, ignore_errors=True)


# Worker scaling for the session (1..3 workers, 3 tasks each, 12 s idle window) and a
# short task heartbeat timeout; the other tests run unchanged with it.
E2E_VALUES = Path(__file__).parent / "data" / "values-e2e.yaml"


@pytest.fixture(scope="session")
def platform(state_dir: Path) -> Iterator[LocalPlatform]:
    lp = LocalPlatform(
        state_dir,
        values_files=[E2E_VALUES],
        progress=lambda msg: print(f"[local] {msg}", flush=True),
    )
    try:
        lp.up(timeout=600)
        yield lp
    finally:
        lp.down(wipe=False)


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
