"""The local platform as a user meets it: each component's log in its MWAA log group's
folder, the live log of a task running on any worker, the printed upload command, and
PythonVirtualenvOperator installing from PyPI through the host's certificate authorities."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from airflow_platform.local.platform import LocalPlatform
from airflow_platform.local.supervisor import START_MARK
from airflow_platform.procs import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CLI = str(Path(sys.executable).parent / "airflow-platform")
GROUP_OF = {
    "scheduler-0": "Scheduler",
    "scheduler-1": "Scheduler",
    "triggerer-0": "Scheduler",
    "dag-processor-0": "DAGProcessing",
    "api-server-0": "WebServer",
    "execution-api-0": "WebServer",
    "worker-0": "Worker",
}


def test_each_component_logs_to_its_mwaa_log_group(platform: LocalPlatform) -> None:
    """logs/airflow-<env>-<Group>/<process>.log, the group read from the rendered pod; `local
    status` says where."""
    rows = {r["name"]: r for r in platform.status()}
    for name, group in GROUP_OF.items():
        expected = platform.state.logs / f"airflow-local-{group}" / f"{name}.log"
        assert rows[name]["log"] == str(expected), rows[name]
        text = expected.read_text(errors="replace")
        assert f"{START_MARK}{name} " in text
    # The scheduler's own output is in the Scheduler group, the API server's in WebServer.
    scheduler = (platform.state.logs / "airflow-local-Scheduler" / "scheduler-0.log").read_text()
    assert "scheduler" in scheduler.lower()
    assert not (platform.state.logs / "scheduler-0.log").exists()


def _live_dag(dag_id: str, flag: Path, tasks: int) -> str:
    return textwrap.dedent(
        f"""
        from __future__ import annotations

        import os
        import time

        import pendulum
        from airflow.sdk import DAG, task

        with DAG({dag_id!r}, start_date=pendulum.datetime(2024, 1, 1), schedule=None,
                 catchup=False, max_active_tasks={tasks}):

            @task
            def hold(i: int) -> None:
                print(f"live-marker-{{i}} on {{os.environ.get('AIRFLOW_PLATFORM_POD_HOSTNAME')}}",
                      flush=True)
                while not os.path.exists({str(flag)!r}):
                    time.sleep(0.2)

            hold.expand(i=list(range({tasks})))
        """
    )


def _log(api, dag_id: str, run_id: str, ti: dict) -> list[str]:
    path = (
        f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{ti['task_id']}/logs/"
        f"{ti['try_number']}?full_content=true&map_index={ti['map_index']}"
    )
    return [str(line.get("event", "")) for line in api.get(path)["content"]]


def test_live_log_of_a_task_on_a_second_worker_is_served_by_its_log_server(
    platform: LocalPlatform, api, runs, helpers, bucket, s3_client, tmp_path: Path
) -> None:
    """Six held tasks at three per worker: the autoscaler starts a second worker. The API
    server reads the running task's log from http://<its hostname>:<port> (the worker's own
    log server), not only from the shared disk."""
    dag_id = helpers.unique("e2e_live_log")
    flag = tmp_path / "release"
    source = _live_dag(dag_id, flag, 6)
    s3_client.put_object(Bucket=bucket["name"], Key=f"{bucket['prefix']}{dag_id}.py", Body=source)
    run_id = runs.start(dag_id)
    try:

        def running_beyond_worker_0() -> dict | None:
            tis = api.task_instances(dag_id, run_id)
            return next(
                (
                    t
                    for t in tis
                    if t["state"] == "running" and t["hostname"] not in ("", "127.0.0.2")
                ),
                None,
            )

        ti = wait_until(running_beyond_worker_0, 300, "a task running on worker-1 or up", 1.0)
        host = ti["hostname"]
        assert host.startswith("127.0.0."), ti

        def served() -> list[str] | None:
            events = _log(api, dag_id, run_id, ti)
            marker = any(e.startswith(f"live-marker-{ti['map_index']} on {host}") for e in events)
            return events if marker and any(f"http://{host}:" in e for e in events) else None

        events = wait_until(served, 120, f"the live log served from {host}", 1.0)
        assert not [e for e in events if "Could not read served logs" in e], events
    finally:
        flag.touch()
    run = runs.finish(dag_id, run_id)
    assert run["state"] == "success", helpers.dump(api.task_instances(dag_id, run_id))


def test_printed_upload_command_puts_a_dag_that_runs(
    platform: LocalPlatform, api, runs, helpers, tmp_path: Path
) -> None:
    dag_id = helpers.unique("e2e_uploaded")
    dag_file = tmp_path / f"{dag_id}.py"
    example = Path(__file__).resolve().parents[2] / "dags" / "examples" / "example_hello.py"
    dag_file.write_text(example.read_text().replace('"example_hello"', repr(dag_id)))
    assert repr(dag_id) in dag_file.read_text()
    done = subprocess.run(
        [CLI, "local", "upload", str(dag_file), "--state-dir", str(platform.state.root)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"dags/{dag_id}.py" in done.stdout
    run = runs.finish(dag_id, runs.start(dag_id))
    assert run["state"] == "success"


def test_virtualenv_task_installs_from_pypi_through_the_hosts_ca(
    platform: LocalPlatform, api, runs, helpers, bucket, s3_client
) -> None:
    """uv inside the task reaches PyPI as the host does (this machine's PyPI traffic goes
    through a certificate authority of its own)."""
    worker_env = platform.state.load()["launch"]["worker-0"]["env"]
    for key in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT"):
        if os.environ.get(key):
            assert worker_env[key] == os.environ[key]
    dag_id = helpers.unique("e2e_venv")
    source = textwrap.dedent(
        f"""
        import pendulum
        from airflow.providers.standard.operators.python import PythonVirtualenvOperator
        from airflow.sdk import DAG


        def uses_the_package() -> str:
            import six

            print(f"six {{six.__version__}} installed from PyPI")
            return six.__version__


        with DAG({dag_id!r}, start_date=pendulum.datetime(2024, 1, 1), schedule=None):
            PythonVirtualenvOperator(
                task_id="install_and_import",
                python_callable=uses_the_package,
                requirements=["six==1.16.0"],
                system_site_packages=False,
            )
        """
    )
    s3_client.put_object(Bucket=bucket["name"], Key=f"{bucket['prefix']}{dag_id}.py", Body=source)
    run_id = runs.start(dag_id)
    run = runs.finish(dag_id, run_id)
    [ti] = api.task_instances(dag_id, run_id)
    assert run["state"] == "success", _log(api, dag_id, run_id, ti)
    xcom = api.get(
        f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/install_and_import/"
        "xcomEntries/return_value"
    )
    assert xcom["value"] in ("1.16.0", '"1.16.0"'), xcom
    # The task's own output reaches its log (the last lines can land just after the state).
    try:
        wait_until(
            lambda: any("six 1.16.0 installed" in e for e in _log(api, dag_id, run_id, ti)),
            60,
            "the virtualenv task's output in its log",
        )
    except TimeoutError:
        pytest.fail(f"no 'six 1.16.0 installed' line in {_log(api, dag_id, run_id, ti)}")
