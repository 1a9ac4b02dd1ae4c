"""Task logs in S3 (`logging.task.destination: s3`) on a real local run against moto:
a running task's log is read through the Airflow API while it runs; once it has finished
and its worker has stopped, the log is an object in the bucket and the API reads it from
there (the local copy removed first)."""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from airflow_platform.local.platform import LocalPlatform
from airflow_platform.local.services import BUCKET, aws_clients
from airflow_platform.procs import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PREFIX = "task-logs"
# Prints a marker, then runs until the test has read its log while it runs (the test opens
# a gate file: the worker is a process on this machine).
DAG_SOURCE = """
import os
import time

import pendulum
from airflow.sdk import dag, task


@dag(dag_id="{dag_id}", schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC"))
def logs_to_s3():
    @task
    def talk() -> None:
        print("{marker} started", flush=True)
        deadline = time.monotonic() + 600
        while not os.path.exists("{gate}") and time.monotonic() < deadline:
            time.sleep(0.5)
        print("{marker} done", flush=True)

    talk()


logs_to_s3()
"""


@pytest.fixture(scope="module")
def platform() -> Iterator[LocalPlatform]:
    root = Path(tempfile.mkdtemp(prefix="airflow-platform-s3logs-"))
    root.chmod(0o755)  # PostgreSQL runs as nobody when we are root
    overlay = root / "values-s3-logs.yaml"
    # The local bucket (created by `up`), beside the DAGs prefix.
    overlay.write_text(
        yaml.safe_dump(
            {"logging": {"task": {"destination": "s3", "s3": {"bucket": BUCKET, "prefix": PREFIX}}}}
        )
    )
    lp = LocalPlatform(
        root / "state", values_files=[overlay], progress=lambda m: print(f"[local] {m}")
    )
    try:
        lp.up(timeout=900)
        yield lp
    finally:
        lp.down(wipe=False)
        shutil.rmtree(root, ignore_errors=True)


def _log_text(api, dag_id: str, run_id: str) -> str:
    content = api.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/talk/logs/1")
    return json.dumps(content)


def test_running_and_finished_task_logs_are_read_through_the_api(platform) -> None:
    data = platform.state.load()
    s3 = aws_clients(data["moto_endpoint"])[0]
    dag_id = f"s3logs_{uuid.uuid4().hex[:8]}"
    marker = f"marker-{uuid.uuid4().hex[:8]}"
    gate = platform.state.root / f"gate-{marker}"
    source = DAG_SOURCE.format(dag_id=dag_id, marker=marker, gate=gate)
    s3.put_object(Bucket=data["bucket"], Key=f"{data['dags_prefix']}{dag_id}.py", Body=source)
    api = platform.api()
    wait_until(lambda: api.dag(dag_id), 180, f"DAG {dag_id} in the API", 0.5)
    api.unpause(dag_id)
    run_id = f"s3logs_{uuid.uuid4().hex[:8]}"
    api.trigger(dag_id, run_id)

    def ti() -> dict:
        return api.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/talk")

    # While it runs (before and after the read): the live log, through the API.
    def live() -> bool:
        if ti()["state"] != "running":
            return False
        text = _log_text(api, dag_id, run_id)
        return f"{marker} started" in text and ti()["state"] == "running"

    wait_until(live, 300, f"the live log of {dag_id}.talk while it runs", 1.0)
    gate.touch()

    finished = wait_until(lambda: ti()["state"] in ("success", "failed") and ti(), 300, "talk")
    assert finished["state"] == "success", json.dumps(finished)[:2000]  # type: ignore[index]

    # The object is in the bucket, under the prefix: the task's supervisor uploads it after
    # the task reported its state.
    def uploaded() -> list[str]:
        listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/dag_id={dag_id}/")
        return [o["Key"] for o in listing.get("Contents", [])]

    keys: list[str] = wait_until(uploaded, 120, f"the log of {dag_id} in s3://{BUCKET}/{PREFIX}/")  # type: ignore[assignment]
    body = b"".join(s3.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in keys)
    assert f"{marker} done".encode() in body

    # Stop the worker that ran it, and remove the local copy: only S3 has the log now.
    hostname = finished["hostname"]  # type: ignore[index]
    workers = platform.workers()
    [name] = [n for n, w in workers.items() if w["hostname"] == hostname and w["alive"]]
    platform.drain_worker(name, reason="test: read the log from S3")
    wait_until(lambda: not platform.workers().get(name, {}).get("alive"), 180, f"{name} stopped")
    local = platform.state.airflow_home / "logs" / f"dag_id={dag_id}"
    shutil.rmtree(local, ignore_errors=True)

    text = _log_text(api, dag_id, run_id)
    assert f"{marker} started" in text and f"{marker} done" in text, text[:2000]
    assert f"s3://{BUCKET}/{PREFIX}" in text, text[:2000]  # the source the API server names
