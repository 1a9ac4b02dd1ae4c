"""A real local run (the chart's components as processes, real Airflow 3.3.2) with StatsD
sent to a UDP socket of the test and task logs sent to moto's CloudWatch Logs API.

Proves: every StatsD name Airflow sends is mapped without a clash, the names the alerts
and panels need are really emitted (the health canary, scheduled every minute, sends its
own: exactly those its module declares), and a task's log is written to the Task log group
and read back through the Airflow API. With AIRFLOW_PLATFORM_RECORD_STATSD=1 the run's
StatsD stream is saved as data/statsd-local-run.txt (seconds from start, line), the series
the dashboard test evaluates the panels against.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import yaml

from airflow_platform.local.platform import LocalPlatform
from airflow_platform.local.services import aws_clients
from airflow_platform.procs import wait_until

from .metric_names import (
    names_needed_by_alerts_and_panels,
    platform_statsd_names,
    produced_series,
)
from .statsd_capture import StatsdCapture
from .statsd_mapping import Mapper

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
MAPPING = ROOT / "charts" / "airflow-platform" / "files" / "statsd-mapping.yaml"
RECORDING = Path(__file__).parent / "data" / "statsd-local-run.txt"
RECORD_ENV = "AIRFLOW_PLATFORM_RECORD_STATSD"
HELLO = ROOT / "dags" / "examples" / "example_hello.py"


@pytest.fixture(scope="module")
def capture() -> Iterator[StatsdCapture]:
    with StatsdCapture() as cap:
        yield cap


@pytest.fixture(scope="module")
def platform(capture: StatsdCapture) -> Iterator[LocalPlatform]:
    root = Path(tempfile.mkdtemp(prefix="airflow-platform-obs-"))
    root.chmod(0o755)  # PostgreSQL runs as nobody when we are root
    overlay = root / "values-observability.yaml"
    overlay.write_text(
        yaml.safe_dump(
            {
                "aws": {"accountId": "123456789012"},
                "logging": {"cloudwatch": {"enabled": True}},
                "metrics": {"statsd": {"enabled": True, "host": "127.0.0.1", "port": capture.port}},
                # The canary every minute: its metrics feed two alerts and a panel.
                "canary": {"enabled": True, "schedule": "* * * * *"},
            }
        )
    )
    lp = LocalPlatform(
        root / "state", values_files=[overlay], progress=lambda m: print(f"[local] {m}")
    )
    try:
        lp.up(timeout=600)
        yield lp
    finally:
        lp.down(wipe=False)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def hello_run(platform: LocalPlatform) -> tuple[str, str]:
    data = platform.state.load()
    s3 = aws_clients(data["moto_endpoint"])[0]
    dag_id = f"obs_hello_{uuid.uuid4().hex[:8]}"
    source = HELLO.read_text().replace('"example_hello"', f'"{dag_id}"')
    s3.put_object(Bucket=data["bucket"], Key=f"{data['dags_prefix']}{dag_id}.py", Body=source)
    api = platform.api()
    wait_until(lambda: api.dag(dag_id), 180, f"DAG {dag_id} in the API", 0.5)
    api.unpause(dag_id)

    def run_once() -> str:
        run_id = f"obs_{uuid.uuid4().hex[:8]}"
        api.trigger(dag_id, run_id)

        def finished() -> dict | None:
            run = api.run(dag_id, run_id)
            return run if run["state"] in ("success", "failed") else None

        run = wait_until(finished, 300, f"{dag_id} to finish", 1.0)
        assert run["state"] == "success", json.dumps(api.task_instances(dag_id, run_id))[:3000]
        return run_id

    # Two runs: a rate over a counter or histogram needs a change after the series appears.
    run_once()
    run_id = run_once()
    return dag_id, run_id


def test_every_name_airflow_sends_maps_to_one_label_set(capture, hello_run) -> None:
    mapper = Mapper.from_file(MAPPING)
    # Scheduler heartbeats and executor gauges arrive every loop; wait for the DAG
    # processor's import-error gauge too.
    wait_until(
        lambda: (
            {"airflow.scheduler_heartbeat", "airflow.dag_processing.import_errors"}
            <= capture.names()
        ),
        120,
        "scheduler and DAG processor StatsD",
        0.5,
    )

    # Two canary results: a rate over its histogram needs a change after the series appears.
    def canary_results() -> int:
        return sum(1 for s in capture.snapshot() if s.name == "airflow.environment_healthy")

    wait_until(lambda: canary_results() >= 2, 240, "two canary results", 1.0)
    # Keep recording a while after the runs, as a scrape window would.
    done_at = time.time()
    wait_until(lambda: capture.snapshot()[-1].at > done_at + 30, 120, "30 s more StatsD", 0.5)
    seen = capture.snapshot()
    start = seen[0].at
    if os.environ.get(RECORD_ENV) == "1":  # refresh the dashboard test's recording
        RECORDING.write_text(
            "".join(f"{s.at - start:.3f} {s.name}:{s.value:g}|{s.kind}\n" for s in seen)
        )
    canary = {
        s.name: s.kind for s in seen if s.name.split(".")[1] in ("canary", "environment_healthy")
    }
    assert canary == platform_statsd_names(), "the canary's StatsD differs from its declared list"
    assert {s.value for s in seen if s.name == "airflow.environment_healthy"} == {1.0}
    series = produced_series(mapper, {s.name: s.kind for s in seen})
    clashes = {n: sets for n, sets in series.items() if len(sets) > 1}
    assert not clashes, f"one name, several label sets: {clashes}"
    missing = names_needed_by_alerts_and_panels(airflow_only=True) - set(series)
    assert not missing, f"alerts/panels use names this run did not produce: {sorted(missing)}"


def test_task_log_is_in_the_task_log_group_and_read_through_the_api(platform, hello_run) -> None:
    dag_id, run_id = hello_run
    data = platform.state.load()
    cw = boto3.client(
        "logs",
        endpoint_url=data["moto_endpoint"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    group = "airflow-local-Task"
    streams = cw.describe_log_streams(logGroupName=group)["logStreams"]
    mine = [s["logStreamName"] for s in streams if f"dag_id={dag_id}" in s["logStreamName"]]
    assert mine, f"no stream of {dag_id} in {group}: {[s['logStreamName'] for s in streams]}"
    world = next(s for s in mine if "task_id=world" in s)
    events = cw.get_log_events(logGroupName=group, logStreamName=world)["events"]
    assert any("hello, world" in e["message"] for e in events), events[:5]

    api = platform.api()
    content = api.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/world/logs/1")
    text = json.dumps(content)
    assert "hello, world" in text
    # The API server read it from CloudWatch (the local log file is not its source).
    assert group in text or "cloudwatch" in text.lower(), text[:2000]
