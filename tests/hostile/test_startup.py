"""Hostile startup.sh exports: the start stops, naming the variable and the fix, before
requirements are installed or the component runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from bootstrap.boot_helpers import PodDirs, build_wheel, sha256_of

from airflow_platform.bootstrap.entrypoint import BootstrapError, prepare

# (id, the script's hostile line, the variable it touches, a fragment of the fix)
CASES: list[tuple[str, str, str, str]] = [
    (
        "auth-manager",
        "export AIRFLOW__CORE__AUTH_MANAGER=my_plugins.OpenDoorAuthManager",
        "AIRFLOW__CORE__AUTH_MANAGER",
        "set auth.manager",
    ),
    (
        "airflow-config-file",
        "export AIRFLOW_CONFIG=/tmp/airflow.cfg",
        "AIRFLOW_CONFIG",
        "the configuration comes from the pod's environment only",
    ),
    (
        "command-indirection",
        "export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD='cat /tmp/db'",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD",
        "airflowConfigurationSecrets",
    ),
    (
        "secret-indirection",
        "export AIRFLOW__SMTP__SMTP_PASSWORD_SECRET=smtp/password",
        "AIRFLOW__SMTP__SMTP_PASSWORD_SECRET",
        "airflowConfigurationSecrets",
    ),
    (
        "all-admins",
        "export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS",
        "auth.simpleAuthManagerUsers",
    ),
    (
        "jwt-secret",
        "export AIRFLOW__API_AUTH__JWT_SECRET=guessable",
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "set secrets.jwtSecret",
    ),
    (
        "fab-config-file",
        "export AIRFLOW__FAB__CONFIG_FILE=/tmp/webserver_config.py",
        "AIRFLOW__FAB__CONFIG_FILE",
        "FAB auth manager",
    ),
    (
        "secrets-backend",
        "export AIRFLOW__SECRETS__BACKEND=my_plugins.LeakyBackend",
        "AIRFLOW__SECRETS__BACKEND",
        "set secretsBackend",
    ),
    (
        "expose-config",
        "export AIRFLOW__API__EXPOSE_CONFIG=True",
        "AIRFLOW__API__EXPOSE_CONFIG",
        "stays hidden",
    ),
    (
        "unset-fernet-key",
        "unset AIRFLOW__CORE__FERNET_KEY",
        "AIRFLOW__CORE__FERNET_KEY",
        "set secrets.fernetKey",
    ),
]


@pytest.fixture
def pod(tmp_path: Path) -> PodDirs:
    """A pod whose requirements.txt installs a local wheel, if the start gets that far."""
    pod = PodDirs(tmp_path / "pod")
    wheel = build_wheel(tmp_path / "wheels", "startup-probe", "1.0")
    pod.write_requirements(
        f"--no-index\n--find-links {wheel.parent}\nstartup-probe==1.0 --hash={sha256_of(wheel)}\n"
    )
    return pod


def test_a_harmless_script_starts(pod: PodDirs) -> None:
    """The pod below the hostile cases starts: only the hostile line stops it."""
    pod.write_startup("export HARMLESS=1\nexport AIRFLOW__CORE__PARALLELISM=8\n")
    prepared = prepare("worker", ["true"], pod.env(), log=lambda _: None)
    assert prepared.environment["HARMLESS"] == "1"
    assert prepared.requirements is not None and prepared.requirements.status == "installed"


@pytest.mark.parametrize(("line", "name", "fix"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_export_stops_the_start(pod: PodDirs, line: str, name: str, fix: str) -> None:
    pod.write_startup(f"export HARMLESS=1\n{line}\n")
    env = pod.env(AIRFLOW__CORE__FERNET_KEY="from-the-secret")
    before = dict(env)
    with pytest.raises(BootstrapError) as caught:
        prepare("scheduler", ["airflow", "scheduler"], env, log=lambda _: None)
    message = str(caught.value)
    assert f"- {name}: " in message, message  # the variable, with its own reason
    assert fix in message and "remove those exports or unsets" in message, message
    assert "HARMLESS" not in message
    assert env == before  # the caller's environment is untouched
    assert not pod.packages.exists(), "requirements were installed for a refused start"
