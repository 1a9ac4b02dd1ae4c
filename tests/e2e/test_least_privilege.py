"""Least privilege on the local platform, as a user's task sees it.

What this proves: the user-facing API server refuses the task execution API, tasks run
through the internal execution-api process, and task code on a worker finds no JWT signing
secret, API secret key, Fernet key or metadata database URL (nor the password of the role it
uses) in any environment it can read of its own worker (its own, its supervisor's, the Celery
pool process's and the Celery worker's), nor in the secret mount paths. Its only database
access is the result backend's own role, which the chart README's recipe keeps out of
Airflow's tables (test_result_backend_role.py). What it does not prove: locally every process runs
as one user on one disk, so task code could still read sibling components' /proc/<pid>/environ
and the state folder's secrets.json; the cluster separates those by container and pod, which
the chart tests check in the rendering (tests/chart/test_least_privilege.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_platform.local.http import request
from airflow_platform.local.platform import LocalPlatform

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PROBE = Path(__file__).parent / "data" / "secret_probe.py"
OPTIONS = (
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
)
# Every way Airflow reads an option: the value, a command printing it, a secrets-backend key.
FORBIDDEN_NAMES = {f"{o}{suffix}" for o in OPTIONS for suffix in ("", "_CMD", "_SECRET")}
# The keys that sign or decrypt, and the metadata database role's password.
SIGNING_SECRETS = ("jwt-secret", "api-secret-key", "fernet-key", "postgres-password")
ORM_BLOCKED = "airflow-db-not-allowed:///"


def test_user_facing_api_server_refuses_the_execution_api(platform: LocalPlatform, api) -> None:
    ti = "0196b1a4-0000-7000-8000-000000000000"
    # The execution API's own calls: not served.
    for method, path in (
        ("PATCH", f"/execution/task-instances/{ti}/run"),
        ("PUT", f"/execution/task-instances/{ti}/heartbeat"),
        ("POST", "/execution/xcoms/some_dag/some_run/some_task/some_key"),
    ):
        status, body = request(method, f"{api.base_url}{path}", {})
        assert status == 405, (method, path, status, body)
    # A GET lands on the UI's catch-all page, never on the execution API.
    for path in ("/execution/health", "/execution/variables/example_greeting"):
        status, body = request("GET", f"{api.base_url}{path}")
        assert isinstance(body, str) and "<html" in body.lower(), (path, status, body)
    assert request("GET", f"{api.base_url}/api/v2/monitor/health")[0] == 200


def test_execution_api_runs_apart_and_answers_its_health(platform: LocalPlatform) -> None:
    launch = platform.state.load()["launch"]
    names = [n for n, r in launch.items() if r["component"] == "execution-api"]
    assert names and all(platform.sup.alive(n) for n in names)
    record = launch[names[0]]
    port = int(next(iter(record["ports"].values())))
    assert request("GET", f"http://127.0.0.1:{port}/execution/health") == (
        200,
        {"status": "healthy"},
    )
    worker = next(r for r in launch.values() if r["component"] == "worker")
    assert worker["env"]["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == (
        f"http://127.0.0.1:{port}/execution/"
    )


def test_task_code_finds_no_signing_secret(platform, api, runs, helpers, bucket, s3_client) -> None:
    dag_id = helpers.unique("e2e_secret_probe")
    key = f"{bucket['prefix']}{dag_id}.py"
    s3_client.put_object(Bucket=bucket["name"], Key=key, Body=PROBE.read_text())
    run_id = runs.start(dag_id)
    run = runs.finish(dag_id, run_id)
    assert run["state"] == "success", helpers.dump(api.task_instances(dag_id, run_id))
    body = s3_client.get_object(Bucket=bucket["name"], Key=f"results/{dag_id}/{run_id}.json")
    report = json.loads(body["Body"].read())

    environs = {"os.environ": report["os_environ"], "/proc/self": report["proc_self_environ"]}
    for ancestor in report["ancestors"]:
        environs[f"/proc/{ancestor['pid']} {ancestor['cmdline'][:60]}"] = ancestor["environ"]
    # The probe really read them: its own Airflow environment, and its supervisor's and the
    # Celery worker's /proc environ (which setproctitle may have blanked: then it is {}).
    cmdlines = " | ".join(a["cmdline"] for a in report["ancestors"])
    assert "supervisor" in cmdlines and "celery" in cmdlines, cmdlines
    assert report["os_environ"].get("AIRFLOW__CORE__EXECUTOR") == "CeleryExecutor"
    for where, env in environs.items():
        assert isinstance(env, dict), (where, env)
        # The task supervisor points the task's own ORM at a URL that refuses every use.
        present = {k for k in FORBIDDEN_NAMES & set(env) if env[k] != ORM_BLOCKED}
        assert sorted(present) == [], where

    secrets = platform.state.secrets()

    def signing_secrets_in(data: object) -> list[str]:
        text = json.dumps(data)
        return [name for name in SIGNING_SECRETS if secrets[name] in text]

    assert signing_secrets_in({"environs": environs, "files": report["files"]}) == []
    # The result backend's own role is what the worker has instead.
    backend = report["os_environ"]["AIRFLOW__CELERY__RESULT_BACKEND"]
    assert backend.startswith("db+postgresql://airflow_results:"), backend
    # The same check finds them where they belong: the API server's environment.
    launch = platform.state.load()["launch"]
    api_env = next(r["env"] for r in launch.values() if r["component"] == "api-server")
    assert signing_secrets_in(api_env) == list(SIGNING_SECRETS)
