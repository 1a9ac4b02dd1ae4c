"""`airflow-platform ops` on the local platform, with real Airflow: status agrees with
`local status`, allowed CLI commands run in the scheduler's environment, a token works on
the REST API, the canary runs on its schedule and reports, the cross-environment trigger
starts a run through another environment's API, and hibernate/resume keeps the state."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from airflow_platform.local.platform import INFRA, LocalPlatform
from airflow_platform.procs import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).parent / "airflow-platform")
FIGURES: dict[str, float] = {}


@pytest.fixture(scope="module")
def platform() -> Iterator[LocalPlatform]:
    root = Path(tempfile.mkdtemp(prefix="airflow-platform-ops-"))
    root.chmod(0o755)  # PostgreSQL runs as nobody when we are root
    values = root / "values-ops.yaml"
    values.write_text(yaml.safe_dump({
        # The canary every minute, from its path in the image (/opt/airflow-platform/dags/
        # platform), which the local platform maps to the repository's dags/platform.
        "canary": {"enabled": True, "schedule": "* * * * *"},
    }))  # fmt: skip
    lp = LocalPlatform(root / "state", values_files=[values],
                       progress=lambda m: print(f"[local] {m}", flush=True))  # fmt: skip
    try:
        lp.up(timeout=600)
        yield lp
    finally:
        lp.down(wipe=False)
        shutil.rmtree(root, ignore_errors=True)


def ops(platform: LocalPlatform, *args: str, check: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "AIRFLOW_PLATFORM_LOCAL_STATE": str(platform.state.root)}
    done = subprocess.run([CLI, "ops", *args], capture_output=True, text=True, env=env,
                          timeout=300)  # fmt: skip
    if check and done.returncode != 0:
        raise AssertionError(f"ops {args} -> {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


def json_lines(text: str) -> list:
    """The JSON list Airflow printed (log lines may come before it)."""
    for line in reversed(text.splitlines()):
        if line.startswith("[{"):
            return json.loads(line)
    raise AssertionError(f"no JSON list in:\n{text[-2000:]}")


def status_json(platform: LocalPlatform) -> dict:
    return json.loads(ops(platform, "status", "--local", "--json").stdout)


def _health(platform: LocalPlatform) -> dict[str, bool]:
    return {r["name"]: r["healthy"] for r in platform.status()}


def test_ops_status_agrees_with_local_status(platform: LocalPlatform) -> None:
    def observe() -> tuple[dict, dict[str, bool]] | None:
        """ops status between two identical `local status` readings (a probe can flip
        on a loaded machine; agreement is about the same state)."""
        before = _health(platform)
        began = time.monotonic()
        found = status_json(platform)
        FIGURES["ops status --local (s)"] = time.monotonic() - began
        return (found, before) if _health(platform) == before else None

    found, health = wait_until(observe, 120, "a stable reading of both statuses", 1)  # type: ignore[misc]
    by_component: dict[str, list[bool]] = {}
    for name, healthy in health.items():
        if name in (*INFRA, "watchdog", "autoscaler"):
            continue
        head, _, tail = name.rpartition("-")
        by_component.setdefault(head if tail.isdigit() else name, []).append(healthy)
    reported = {c["name"]: c for c in found["components"]}
    assert set(reported) == set(by_component)
    for name, members in by_component.items():
        assert reported[name]["ready"] == sum(members), (name, found)
    assert (found["status"] == "AVAILABLE") == all(health.values()), found
    assert found["heartbeat"]["status"] == "healthy"
    assert found["import_errors"] == len(platform.api().import_errors())
    workers = found["workers"]
    assert (workers["minimum"], workers["maximum"]) == (1, 3)  # values-local.yaml

    # The table tells the same; its exit code is 0 exactly when the status is AVAILABLE.
    table = ops(platform, "status", "--local")
    status = next(s for s in ("AVAILABLE", "UNHEALTHY") if s in table.stdout)
    assert (table.returncode == 0) == (status == "AVAILABLE"), table.stdout


def test_allowed_airflow_commands_run_with_the_schedulers_environment(platform) -> None:
    # `up` returns when the components are healthy; the DAG processor parses on its own time.
    api = platform.api()
    for dag_id in ("example_hello", "airflow_platform_canary"):
        wait_until(lambda d=dag_id: api.dag(d), 180, f"DAG {dag_id} parsed", 1)
    listed = ops(platform, "airflow", "--local", "--", "dags", "list", "-o", "json", check=True)
    dag_ids = {d["dag_id"] for d in json_lines(listed.stdout)}
    assert {"example_hello", "airflow_platform_canary"} <= dag_ids

    missing = ops(platform, "airflow", "--local", "--", "variables", "get", "no_such_variable")
    assert missing.returncode == 1, "Airflow's exit code is passed through"

    refused = ops(platform, "airflow", "--local", "--", "users", "create", "-u", "x")
    assert refused.returncode == 2
    assert "`airflow users` is not an allowed command" in refused.stderr
    assert "dags list" in refused.stderr


def test_the_token_opens_the_rest_api(platform: LocalPlatform) -> None:
    from airflow_platform.local.http import request

    token = json.loads(ops(platform, "token", "--local", "--json", check=True).stdout)
    assert token["expires_at"]
    api = platform.api()
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    status, body = request("GET", f"{api.base_url}/api/v2/dags?limit=1", headers=bearer)
    assert status == 200 and body["total_entries"] >= 1
    status, _ = request("GET", f"{api.base_url}/api/v2/dags?limit=1",
                        headers={"Authorization": "Bearer not-a-token"})  # fmt: skip
    assert status in (401, 403)  # Airflow refuses a token it cannot verify


def test_the_canary_runs_on_schedule_and_ops_status_shows_it(platform: LocalPlatform) -> None:
    def reported() -> dict | None:
        canary = status_json(platform).get("canary")
        return canary if canary and canary.get("healthy") else None

    canary = wait_until(reported, 240, "the scheduled canary's report", interval=5)
    assert isinstance(canary, dict)
    assert canary["queues"] == ["default"] and canary["missing"] == []
    assert 0 < canary["latency_seconds"] < 120
    assert canary["run_id"].startswith("scheduled__")
    FIGURES["canary schedule-to-finish (s)"] = canary["latency_seconds"]


def test_the_cross_environment_trigger_starts_a_run_through_the_api(platform) -> None:
    """A DAG uploaded to the bucket, run by the platform's worker, triggers example_hello in
    "another" environment (this one's API server) with the credentials of a connection."""
    from airflow_platform.local.services import aws_clients

    api = platform.api()
    stamp = int(time.time())
    dag_id, remote_run = f"ops_cross_env_{stamp}", f"cross_env_{stamp}"
    # The other environment signs its client in as a FAB service account (no browser).
    login, password = platform.create_service_account("Op")
    api.call("POST", "/api/v2/connections", {
        "connection_id": "other_environment", "conn_type": "http", "host": api.base_url,
        "login": login, "password": password,
    }, ok=(201, 409))  # fmt: skip
    api.unpause("example_hello")
    source = textwrap.dedent(f"""
        from datetime import datetime
        from airflow.sdk import DAG
        from airflow_platform.operators import PlatformTriggerDagRunOperator
        with DAG("{dag_id}", schedule=None, start_date=datetime(2026, 1, 1)):
            PlatformTriggerDagRunOperator(
                task_id="trigger", environment_conn_id="other_environment",
                trigger_dag_id="example_hello", trigger_run_id="{remote_run}",
                conf={{"from": "ops test"}}, wait_for_completion=True, poke_interval=1,
                timeout=300)
    """)
    data = platform.state.load()
    s3, _ = aws_clients(data["moto_endpoint"])
    s3.put_object(Bucket=data["bucket"], Key=f"{data['dags_prefix']}ops/{dag_id}.py",
                  Body=source.encode())  # fmt: skip
    wait_until(lambda: api.dag(dag_id), 180, f"DAG {dag_id} parsed", 1)
    api.unpause(dag_id)
    api.trigger(dag_id, "local_run")

    def finished() -> dict | None:
        run = api.run(dag_id, "local_run")
        return run if run["state"] in ("success", "failed") else None

    run = wait_until(finished, 400, f"{dag_id} to finish", 2)
    assert isinstance(run, dict) and run["state"] == "success", run
    remote = api.run("example_hello", remote_run)
    assert remote["state"] == "success" and remote["conf"] == {"from": "ops test"}


def test_resume_refuses_an_environment_that_is_not_hibernated(platform) -> None:
    before = {n: r.pid for n, r in platform.sup.records().items()}
    done = ops(platform, "resume", "--local")
    assert done.returncode == 2 and "is not hibernated" in done.stderr
    assert {n: r.pid for n, r in platform.sup.records().items()} == before


def test_hibernate_stops_the_components_and_resume_runs_the_schedule_again(platform) -> None:
    began = time.monotonic()
    ops(platform, "hibernate", "--local", check=True)
    FIGURES["local hibernate (s)"] = time.monotonic() - began
    found = status_json(platform)
    assert found["status"] == "HIBERNATED"
    assert all(c["ready"] == 0 for c in found["components"])
    assert platform.sup.alive("postgres") and not platform.sup.alive("scheduler-0")
    again = ops(platform, "hibernate", "--local")
    assert again.returncode == 2 and "already hibernated" in again.stderr

    resumed_at = time.time()
    began = time.monotonic()
    ops(platform, "resume", "--local", check=True)
    FIGURES["local resume to healthy (s)"] = time.monotonic() - began
    assert status_json(platform)["status"] == "AVAILABLE"

    api = platform.api()

    def scheduled_run_after_resume() -> bool:
        runs = api.get("/api/v2/dags/airflow_platform_canary/dagRuns?order_by=-run_after&limit=5")
        return any(
            r["state"] == "success" and r["run_type"] == "scheduled"
            and time.mktime(time.strptime(r["end_date"][:19], "%Y-%m-%dT%H:%M:%S"))
            - time.timezone >= resumed_at
            for r in runs["dag_runs"]
        )  # fmt: skip

    wait_until(scheduled_run_after_resume, 180, "a scheduled canary run after resume", 5)


def test_print_figures() -> None:
    print("\nops figures (local platform):", json.dumps(FIGURES, indent=1))
