"""The whole platform on one machine, driven through S3 and the REST API like a user.

Order matters little, but the disruptive tests (scheduler kill, PostgreSQL restart) run
last and leave the platform healthy again (a re-run of `up` restarts what died).
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from airflow_platform.local.api import ApiError
from airflow_platform.local.platform import LocalPlatform, PlatformError
from airflow_platform.local.services import ServiceError, poll
from airflow_platform.procs import free_port, port_open, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "dags" / "examples"
ARTIFACTS = REPO / "artifacts" / "e2e"


def is_loopback(address: str) -> bool:
    """127.0.0.0/8 and ::1: each local worker's log server has its own loopback address."""
    import ipaddress

    return ipaddress.ip_address(address.strip("[]")).is_loopback


def test_every_component_is_healthy(platform: LocalPlatform, helpers) -> None:
    rows = {row["name"]: row for row in platform.status()}
    expected = {"postgres", "moto", "openbao", "dagsync", "api-server-0", "dag-processor-0"}
    expected |= {"scheduler-0", "scheduler-1", "triggerer-0"}
    assert expected <= set(rows), helpers.dump(rows)
    # The autoscaler keeps at least one worker; which one depends on the scale-ins before.
    workers = [n for n in rows if re.fullmatch(r"worker-\d+", n)]
    assert workers, helpers.dump(rows)
    unhealthy = {n: r for n, r in rows.items() if not (r["alive"] and r["healthy"])}
    assert not unhealthy, helpers.dump(unhealthy)


def test_rerunning_up_keeps_what_runs(platform: LocalPlatform) -> None:
    before = {n: r.pid for n, r in platform.sup.records().items()}
    result = platform.up(timeout=300)
    assert result.started == []
    after = {n: r.pid for n, r in platform.sup.records().items()}
    # Nothing started or restarted: every process left has the pid it had.
    assert after == {n: before.get(n) for n in after}
    # Meanwhile the autoscaler may have scaled in a worker beyond the minimum (with its log
    # server), as after an earlier test's burst: `up` leaves a draining worker to it.
    gone = set(before) - set(after)
    assert all(re.fullmatch(r"worker-\d+(-log-server)?", n) for n in gone), gone
    assert any(re.fullmatch(r"worker-\d+", n) for n in after), after


def test_nothing_it_started_listens_beyond_loopback(platform: LocalPlatform) -> None:
    """Every listening socket of every process the platform started (and their children:
    Airflow's log and API servers fork) is on 127.0.0.1 or ::1, never every interface."""
    import psutil

    pids = {rec.pid for rec in platform.sup.records().values()}
    pids |= {row["pid"] for row in platform.status() if row.get("pid")}
    processes = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            parent = psutil.Process(pid)
            processes += [parent, *parent.children(recursive=True)]
    listening: dict[str, str] = {}
    for proc in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            for conn in proc.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    listening[f"{conn.laddr.ip}:{conn.laddr.port}"] = " ".join(proc.cmdline()[:4])
    assert len(listening) >= 8, listening  # postgres, moto, openbao, dagsync, API server...
    wide = {a: cmd for a, cmd in listening.items() if not is_loopback(a.rsplit(":", 1)[0])}
    assert wide == {}, wide


def test_state_folder_and_secrets_are_private(platform: LocalPlatform) -> None:
    root = platform.state.root
    mode = root.stat().st_mode & 0o777
    # 0700, or 0710 when PostgreSQL runs as an unprivileged user and only traverses it.
    assert mode in (0o700, 0o710), oct(mode)
    for name in ("secrets.json", "state.json", "rendered.yaml"):
        assert (root / name).stat().st_mode & 0o777 == 0o600, name
    assert not (root / "postgres" / "pwfile").exists()


def test_uploaded_dag_reads_vault_and_writes_s3(api, runs, helpers, bucket, s3_client) -> None:
    dag_id = helpers.unique("e2e_vault_to_s3")
    source = (EXAMPLES / "example_vault_to_s3.py").read_text()
    s3_client.put_object(Bucket=bucket["name"], Key=f"{bucket['prefix']}{dag_id}.py", Body=source)

    run_id = runs.start(dag_id)
    run = runs.finish(dag_id, run_id)
    tis = api.task_instances(dag_id, run_id)
    assert run["state"] == "success", helpers.dump(tis)

    body = s3_client.get_object(Bucket=bucket["name"], Key=f"results/{dag_id}/{run_id}.json")
    report = json.loads(body["Body"].read())
    # Seeded in the Vault API by `local up` (connection example_api, two variables).
    assert report == {
        "dag_id": dag_id,
        "run_id": run_id,
        "connection": {"host": "api.example.internal", "login": "example-user", "port": 8443},
        "greeting": "hello from the Vault API",
    }


def test_import_error_is_reported_and_other_dags_keep_working(
    api, runs, helpers, bucket, s3_client
) -> None:
    name = helpers.unique("e2e_broken") + ".py"
    key = f"{bucket['prefix']}{name}"
    s3_client.put_object(
        Bucket=bucket["name"],
        Key=key,
        Body=(Path(__file__).parent / "data/broken_dag.py").read_text(),
    )
    try:
        error = wait_until(
            lambda: next((e for e in api.import_errors() if e["filename"].endswith(name)), None),
            180,
            f"an import error for {name}",
            interval=0.5,
        )
        assert "dag_that_does_not_exist" in error["stack_trace"], helpers.dump(error)

        run_id = runs.start("example_hello")
        assert runs.finish("example_hello", run_id)["state"] == "success"
    finally:
        s3_client.delete_object(Bucket=bucket["name"], Key=key)
    wait_until(
        lambda: not any(e["filename"].endswith(name) for e in api.import_errors()),
        180,
        "the import error to clear once the file is deleted from the bucket",
        interval=1.0,
    )


def test_ui_login_page_renders_in_headless_chromium(platform: LocalPlatform, api) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium package is required (apt-get install chromium)"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / "login-page.png"
    screenshot.unlink(missing_ok=True)
    # Airflow's sign-in for the OpenID Connect provider lands on the provider's form.
    url = f"{api.base_url}/auth/login/oidc"
    with tempfile.TemporaryDirectory() as profile:
        common = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=15000",
        ]
        dom = subprocess.run(
            [*common, "--dump-dom", url], capture_output=True, text=True, timeout=180
        )
        assert dom.returncode == 0, dom.stderr[-2000:]
        # The browser followed Airflow's redirect to the provider's sign-in form.
        assert 'type="password"' in dom.stdout, dom.stdout[-3000:]
        assert 'id="sign-in"' in dom.stdout, dom.stdout[-3000:]
        shot = subprocess.run(
            [*common, f"--screenshot={screenshot}", "--window-size=1280,800", url],
            capture_output=True,
            text=True,
            timeout=180,
        )
    assert shot.returncode == 0, shot.stderr[-2000:]
    png = screenshot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(png) > 10_000, f"screenshot suspiciously small ({len(png)} bytes)"


def test_taken_api_port_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    blocker = subprocess.Popen(
        ["python3", "-m", "http.server", "--bind", "127.0.0.1", str(port := free_port())],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: port_open(port), 30, "the port blocker")
        other = LocalPlatform(tmp_path / "state", api_port=port)
        with pytest.raises(PlatformError, match=rf"port {port} .*already in use"):
            other.up()
        assert not other.sup.records(), "nothing may be started when the port is taken"
    finally:
        blocker.terminate()
        blocker.wait(10)


def test_component_dying_at_start_shows_its_log_tail(tmp_path: Path) -> None:
    lp = LocalPlatform(tmp_path / "state")
    lp.sup.start("doomed", ["sh", "-c", "echo 'cannot open the frobnicator' >&2; exit 3"], env={})
    with pytest.raises(ServiceError, match=r"doomed exited while starting(.|\n)*frobnicator"):
        poll(lp.sup, "doomed", lambda: False, 60, "doomed")
    lp.sup.stop("doomed")


def test_killing_a_scheduler_mid_run_loses_and_repeats_nothing(
    platform: LocalPlatform, api, runs, helpers, bucket, s3_client
) -> None:
    dag_id = "example_wide_chain"
    run_id = runs.start(dag_id)
    wait_until(
        lambda: any(t["state"] == "success" for t in api.task_instances(dag_id, run_id)),
        300,
        "the first wave to make progress",
        interval=0.5,
    )
    victim = platform.kill("scheduler-0")  # SIGKILL: no chance to clean up
    try:
        run = runs.finish(dag_id, run_id, timeout=900)
        tis = api.task_instances(dag_id, run_id)
        assert run["state"] == "success", helpers.dump(tis)
        assert len(tis) == 24
        assert {t["state"] for t in tis} == {"success"}, helpers.dump(tis)
        assert [t["task_id"] for t in tis if t["try_number"] != 1] == [], helpers.dump(tis)
        # Each execution wrote its own marker: exactly one per task.
        listing = s3_client.list_objects_v2(
            Bucket=bucket["name"], Prefix=f"results/{dag_id}/{run_id}/"
        )
        keys = [o["Key"] for o in listing.get("Contents", [])]
        per_task: dict[str, int] = {}
        for key in keys:
            task_id = key.split("/")[3]
            per_task[task_id] = per_task.get(task_id, 0) + 1
        assert per_task == {t["task_id"]: 1 for t in tis}, helpers.dump(per_task)
    finally:
        # The watchdog restarts it (as a kubelet would); `up` makes sure of it.
        platform.up(timeout=300)
        assert platform.sup.record("scheduler-0").pid != victim


def test_postgres_restart_during_a_run(platform: LocalPlatform, api, runs, helpers) -> None:
    dag_id = "example_wide_chain"
    run_id = runs.start(dag_id)
    wait_until(
        lambda: any(t["state"] == "running" for t in api.task_instances(dag_id, run_id)),
        300,
        "a task to be running",
        interval=0.5,
    )
    port = platform.state.load()["ports"]["postgres"]
    platform.stop_component("postgres")
    assert not port_open(port)

    # An outage, not a blip: wait until Airflow itself reports the database as down.
    def outage_reported() -> bool:
        try:
            return api.health().get("metadatabase", {}).get("status") != "healthy"
        except ApiError:  # an error answer is a report too
            return True

    wait_until(
        outage_reported,
        120,
        "the API server to notice the database outage",
        interval=0.5,
    )
    platform.restart_infra("postgres")
    run = runs.finish(dag_id, run_id, timeout=900)
    tis = api.task_instances(dag_id, run_id)
    assert run["state"] == "success", helpers.dump(tis)
    assert {t["state"] for t in tis} == {"success"}, helpers.dump(tis)
    platform.up(timeout=300)  # whatever the outage took down comes back
