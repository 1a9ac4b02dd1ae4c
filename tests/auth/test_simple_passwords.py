"""The SimpleAuthManager passwords the API server pod installs from a Secret."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_platform.auth.simple_passwords import PasswordsFileError, install

USERS = "admin:admin,ops:op"


def secret(tmp_path: Path, content: str) -> Path:
    path = tmp_path / "secret" / "passwords.json"
    path.parent.mkdir()
    path.write_text(content)
    return path


def test_every_user_is_installed_owner_only(tmp_path: Path) -> None:
    source = secret(tmp_path, json.dumps({"admin": "a-pass", "ops": "o-pass", "extra": "x"}))
    target = tmp_path / "auth" / "passwords.json"
    assert install(source, target, USERS) == ["admin", "ops"]
    assert json.loads(target.read_text()) == {"admin": "a-pass", "ops": "o-pass", "extra": "x"}
    assert target.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (json.dumps({"admin": "a"}), "no password for ops (auth.simple.users)"),
        ("admin: a", "is not JSON"),
        (json.dumps(["admin", "ops"]), "must be a JSON object"),
        (json.dumps({"admin": "a", "ops": ""}), "non-empty password"),
    ],
)
def test_a_file_that_does_not_fit_the_users_is_refused(tmp_path, content, message) -> None:
    target = tmp_path / "passwords.json"
    with pytest.raises(PasswordsFileError, match=re.escape(message)):
        install(secret(tmp_path, content), target, USERS)
    assert not target.exists()


def test_airflow_generates_and_prints_nothing_with_the_installed_file(tmp_path: Path) -> None:
    target = tmp_path / "passwords.json"
    install(secret(tmp_path, json.dumps({"admin": "a-pass", "ops": "o-pass"})), target, USERS)
    before = target.read_text()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": USERS,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(target),
    }
    code = (
        "from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import "
        "SimpleAuthManager as M; M().init(); print(sorted(M.get_passwords()))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "['admin', 'ops']" in done.stdout
    assert "Password for user" not in done.stdout + done.stderr
    assert target.read_text() == before
