"""The runbook's key rotations, against real Airflow 3.3.2 and real PostgreSQL.

- Fernet: a connection and a variable written under key A stay readable through the
  runbook's steps: keys "B,A" -> `airflow rotate-fernet-key` -> key B alone. The rows are read
  back with the `airflow` CLI and checked in the database (re-encrypted with B, no longer
  readable with A).
- JWT: the execution API's own token generator and validator (what the API server checks a
  running task's heartbeats with), configured the way the chart configures them
  (`AIRFLOW__API_AUTH__JWT_SECRET`). A task token issued before the secret changes is refused
  after it: Airflow 3.3.2 accepts one symmetric secret, so the rotation cannot keep running
  tasks going (docs/runbook.md says what happens to them and when to rotate)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken
from embedded_pg import migrate_airflow_db

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
