"""The runbook's key rotations, against real Airflow 3.3.2 and real PostgreSQL.

- Fernet: a connection and a variable written under key A stay readable through the
  runbook's steps: keys "B,A" -> `airflow rotate-fernet-key` -> key B alone. The rows are read
  back with the `airflow` CLI and checked in the database (re-encrypted with B, no longer
  readable with A).
- JWT secret (the chart's default, symmetric): the execution API's own token generator and
  validator (what the API server checks a running task's heartbeats with), configured the way
  the chart configures them (`AIRFLOW__API_AUTH__JWT_SECRET`). A task token issued before the
  secret changes is refused after it: Airflow 3.3.2 accepts one symmetric secret, so that
  rotation cannot keep running tasks going.
- Signing key (`secrets.jwtSigning`): the runbook's four steps with real components (the
  execution API behind a stand-in for its Service, a scheduler, a DAG processor and a Celery
  worker on a moto SQS queue, keys and JWKS made by `airflow-platform ops jwt`). A task that
  runs through the whole rotation keeps heartbeating and succeeds; a token of the dropped key
  is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import boto3
import pytest
import sqlalchemy as sa
from celery_harness import SqsBroker, create_queue
from cryptography.fernet import Fernet, InvalidToken
from embedded_pg import migrate_airflow_db

from airflow_platform.procs import wait_until

from .rotation_harness import DAG, Cluster, ServiceProxy, airflow_base_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

AIRFLOW = str(Path(sys.executable).parent / "airflow")
PASSWORD = "s3cret-pa55"
VARIABLE = "tok-123"


def airflow(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([AIRFLOW, *args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"airflow {' '.join(args)}:\n{done.stdout}\n{done.stderr[-3000:]}"
    return done.stdout


def stored(url: str) -> tuple[str, str]:
    """The connection's password and the variable's value as the database holds them."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as db:
            password = db.execute(
                sa.text("SELECT password FROM connection WHERE conn_id = 'team_db'")
            ).scalar_one()
            value = db.execute(
                sa.text("SELECT val FROM variable WHERE key = 'team_token'")
            ).scalar_one()
    finally:
        engine.dispose()
    return password, value


def test_fernet_rotation_keeps_connections_and_variables_readable(postgres, tmp_path) -> None:
    url = postgres.create_database("fernet")
    home = tmp_path / "airflow-home"
    migrate_airflow_db(url, home)
    key_a, key_b = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    base.update(AIRFLOW_HOME=str(home), AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=url,
                AIRFLOW__CORE__LOAD_EXAMPLES="False")  # fmt: skip

    def with_keys(keys: str) -> dict[str, str]:
        return {**base, "AIRFLOW__CORE__FERNET_KEY": keys}

    def read_back(keys: str) -> tuple[str, str]:
        conn = json.loads(airflow(with_keys(keys), "connections", "get", "team_db", "-o", "json"))
        (found,) = conn if isinstance(conn, list) else [conn]
        value = airflow(with_keys(keys), "variables", "get", "team_token").strip()
        return found["password"], value

    airflow(with_keys(key_a), "connections", "add", "team_db",
            "--conn-uri", f"postgresql://analyst:{PASSWORD}@db.example:5432/sales")  # fmt: skip
    airflow(with_keys(key_a), "variables", "set", "team_token", VARIABLE)
    password, value = stored(url)
    assert PASSWORD not in password and VARIABLE not in value  # encrypted at rest
    assert Fernet(key_a).decrypt(password.encode()).decode() == PASSWORD

    # 1. both keys, the new one first: what was written under A is still read.
    assert read_back(f"{key_b},{key_a}") == (PASSWORD, VARIABLE)
    # 2. re-encrypt with the first key.
    airflow(with_keys(f"{key_b},{key_a}"), "rotate-fernet-key")
    password, value = stored(url)
    assert Fernet(key_b).decrypt(password.encode()).decode() == PASSWORD
    assert Fernet(key_b).decrypt(value.encode()).decode() == VARIABLE
    with pytest.raises(InvalidToken):  # the check can fail: A no longer opens the rows
        Fernet(key_a).decrypt(password.encode())
    # 3. drop the old key: still readable.
    assert read_back(key_b) == (PASSWORD, VARIABLE)


TOKEN_CHECK = r"""
import json, sys
from airflow.api_fastapi.execution_api.app import _jwt_generator, _jwt_validator
if sys.argv[1] == "issue":
    print(_jwt_generator().generate({"sub": "0190f6a2-task-instance"}))
else:
    try:
        claims = _jwt_validator().validated_claims(sys.stdin.read().strip())
    except Exception as exc:
        print(json.dumps({"refused": type(exc).__name__}))
    else:
        print(json.dumps({"sub": claims["sub"]}))
"""


def test_a_task_token_does_not_survive_a_jwt_secret_change(tmp_path) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    base.update(AIRFLOW_HOME=str(tmp_path), AIRFLOW__CORE__LOAD_EXAMPLES="False")

    def run(secret: str, step: str, token: str = "") -> str:
        done = subprocess.run(
            [sys.executable, "-c", TOKEN_CHECK, step], input=token, capture_output=True,
            text=True, timeout=300, env={**base, "AIRFLOW__API_AUTH__JWT_SECRET": secret},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout.strip().splitlines()[-1]

    old, new = "a" * 64, "b" * 64
    token = run(old, "issue")
    assert json.loads(run(old, "check", token)) == {"sub": "0190f6a2-task-instance"}
    # After the switch the API server refuses the running task's token: its heartbeats fail.
    assert json.loads(run(new, "check", token)) == {"refused": "InvalidSignatureError"}
    # Nor is a list of secrets a way through: Airflow signs and checks with the whole string.
    assert json.loads(run(f"{new},{old}", "check", token)) == {"refused": "InvalidSignatureError"}


# The signing-key rotation (secrets.jwtSigning, docs/runbook.md) with short token lifetimes,
# so that "wait for the longest token lifetime" takes under a minute. The execution API renews
# a running task's token once under 30 s of it is left, so 35 s still exercises renewal.
LIFETIMES = {
    "AIRFLOW__EXECUTION_API__JWT_EXPIRATION_TIME": 35,  # a running task's token, renewed
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": 45,  # a queued task's (workload) token
    "AIRFLOW__API_AUTH__JWT_EXPIRATION_TIME": 45,  # users' tokens
    "AIRFLOW__API_AUTH__JWT_CLI_EXPIRATION_TIME": 45,
}
LEEWAY = 5  # [api_auth] jwt_leeway (Airflow's default is 10), set with the lifetimes
TASK_AUDIENCE = "urn:airflow.apache.org:task"  # [execution_api] jwt_audience, the default


def cli(*args: str) -> str:
    """The project's CLI, as the runbook runs it."""
    command = [str(Path(sys.executable).parent / "airflow-platform"), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(args)}:\n{done.stdout}\n{done.stderr[-3000:]}"
    return done.stdout.strip()


def forged_heartbeat(port: int, pem: Path, kid: str) -> int:
    """A heartbeat for an unknown task instance with a token signed by `pem`: 404 when the
    execution API accepts the token, 403 when it refuses it."""
    import jwt
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    now, ti = int(time.time()), str(uuid.uuid4())
    claims = {"sub": ti, "scope": "execution", "aud": TASK_AUDIENCE,
              "iat": now, "nbf": now, "exp": now + 60, "jti": uuid.uuid4().hex}  # fmt: skip
    key = load_pem_private_key(pem.read_bytes(), password=None)
    token = jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid})  # type: ignore[arg-type]
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/execution/task-instances/{ti}/heartbeat",
        data=json.dumps({"hostname": "probe", "pid": 1}).encode(), method="PUT",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_a_signing_key_rotation_keeps_a_running_task_going(postgres, moto_server, tmp_path) -> None:
    """The runbook's rotation with real components: a task runs from before the new key is
    published until after the old one is dropped, heartbeating all along, and succeeds; a token
    of the dropped key is refused. Signers (scheduler, execution API) hold the private key,
    verifiers (execution API) the JWKS, the worker neither."""
    url = postgres.create_database("rotation")
    home = tmp_path / "home"
    migrate_airflow_db(url, home)
    (home / "dags").mkdir(parents=True)
    gate = tmp_path / "gate"
    (home / "dags" / "rotation_probe.py").write_text(DAG.format(gate=str(gate)))

    keys = tmp_path / "keys"
    keys.mkdir()
    kid_a = cli("ops", "jwt", "new-key", "--out", str(keys / "a.pem"))
    kid_b = cli("ops", "jwt", "new-key", "--out", str(keys / "b.pem"))
    jwks_a, jwks_ab, jwks_b = (keys / f"jwks-{n}.json" for n in ("a", "ab", "b"))
    cli("ops", "jwt", "jwks", "--add", str(keys / "a.pem"), "--out", str(jwks_a))
    cli("ops", "jwt", "jwks", "--from", str(jwks_a), "--add", str(keys / "b.pem"),
        "--out", str(jwks_ab))  # fmt: skip
    cli("ops", "jwt", "jwks", "--from", str(jwks_ab), "--remove", kid_a, "--out", str(jwks_b))
    assert [k["kid"] for k in json.loads(jwks_ab.read_text())["keys"]] == [kid_a, kid_b]

    sqs = boto3.client("sqs", endpoint_url=moto_server, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    broker = SqsBroker(moto_server, create_queue(sqs, visibility_timeout=600))
    base = airflow_base_env(home, url, broker.platform_env(concurrency=1, visibility_timeout=600))
    base.update({k: str(v) for k, v in LIFETIMES.items()},
                AIRFLOW__API_AUTH__JWT_LEEWAY=str(LEEWAY), AWS_ACCESS_KEY_ID="testing",
                AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")  # fmt: skip
    cluster = Cluster(tmp_path, base)
    engine = sa.create_engine(url)

    def task_state() -> tuple[str | None, object]:
        with engine.connect() as db:
            row = db.execute(sa.text("SELECT state, last_heartbeat_at FROM task_instance "
                                     "WHERE dag_id = 'rotation_probe'")).first()  # fmt: skip
        return (row[0], row[1]) if row else (None, None)

    try:
        execution, port = cluster.execution_api(keys / "a.pem", jwks_a)
        proxy = ServiceProxy(port).start()  # the execution-api Service
        base["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = (
            f"http://127.0.0.1:{proxy.port}/execution/"
        )
        worker_args = ["celery", "worker", "--queues", "default", "--concurrency", "1",
                       "--skip-serve-logs"]  # fmt: skip
        worker = cluster.start("worker", worker_args, cluster.env())
        scheduler = cluster.start("scheduler", ["scheduler"], cluster.env(keys / "a.pem"))
        cluster.start("dag-processor", ["dag-processor"], cluster.env())
        with engine.connect() as db:
            wait_until(lambda: db.execute(sa.text(
                "SELECT 1 FROM dag WHERE dag_id = 'rotation_probe'")).first(),
                300, "the DAG parsed")  # fmt: skip
        airflow(cluster.env(), "dags", "unpause", "rotation_probe")
        airflow(cluster.env(), "dags", "trigger", "rotation_probe")
        started = time.time()
        wait_until(lambda: task_state()[0] == "running" and kid_a in proxy.kids_since(started),
                   300, "the task running with a token of key A")  # fmt: skip

        def roll_execution_api(key: str, jwks: Path) -> None:
            nonlocal execution
            new, new_port = cluster.execution_api(keys / key, jwks)
            proxy.switch(new_port)  # new connections go to the new pod
            execution.stop(timeout=60)
            execution = new

        # 1. Publish B next to A; the verifiers restart to read the JWKS (still signing with A).
        roll_execution_api("a.pem", jwks_ab)
        # 2. Roll the signers to B.
        scheduler.stop(timeout=60)
        scheduler = cluster.start("scheduler", ["scheduler"], cluster.env(keys / "b.pem"))
        roll_execution_api("b.pem", jwks_ab)
        switched = time.time()
        wait_until(lambda: kid_b in proxy.kids_since(switched), 120,
                   "the running task renewing its token under key B")  # fmt: skip
        # 3. Wait for the longest token lifetime: no valid token of key A is left.
        deadline = switched + max(LIFETIMES.values()) + LEEWAY
        while time.time() < deadline:
            assert task_state()[0] == "running", cluster.logs()
            time.sleep(1)
        # 4. Drop A.
        roll_execution_api("b.pem", jwks_b)
        dropped = time.time()

        def beat_after_drop() -> bool:
            state, beat = task_state()
            assert state == "running", cluster.logs()
            return beat is not None and beat.timestamp() > dropped  # type: ignore[attr-defined]

        wait_until(beat_after_drop, 120, "a heartbeat accepted after key A was dropped")
        assert proxy.kids_since(dropped) == {kid_b}
        # A token of the dropped key is refused; one of B, same shape, is accepted.
        assert forged_heartbeat(proxy.backend, keys / "a.pem", kid_a) == 403
        assert forged_heartbeat(proxy.backend, keys / "b.pem", kid_b) == 404

        gate.touch()
        wait_until(lambda: task_state()[0] in ("success", "failed"), 300, "the task finishing")
        assert task_state()[0] == "success", cluster.logs()
        log = worker.log_path.read_text(errors="replace")
        assert "Failed to send heartbeat" not in log, log[-3000:]
        # Every execution-api generation (old key; both keys; new key signing; new key alone)
        # took the task's heartbeats, and none of its calls was refused.
        with engine.connect() as db:
            ti_id = str(db.execute(sa.text("SELECT id FROM task_instance")).scalar_one())
        calls = cluster.execution_api_calls(ti_id)
        assert len(calls) == 4
        for name, made in calls.items():
            assert any(route.endswith("/heartbeat") for route, _ in made), (name, made)
            assert all(200 <= status < 300 for _, status in made), (name, made)
    finally:
        engine.dispose()
        cluster.stop()
        if "proxy" in locals():
            proxy.stop()
