"""startup.sh: exports passed on, protected variables refused, time limit, component names."""

from __future__ import annotations

from pathlib import Path

import pytest
from boot_helpers import PodDirs

from airflow_platform.bootstrap.entrypoint import BootstrapError, prepare
from airflow_platform.bootstrap.startup import run_startup_script


@pytest.fixture
def pod(tmp_path: Path) -> PodDirs:
    return PodDirs(tmp_path)


def test_exports_reach_the_command(pod: PodDirs) -> None:
    pod.write_startup(
        'echo "startup for $MWAA_AIRFLOW_COMPONENT"\n'
        "export ORACLE_HOME=/opt/oracle\n"
        'export PATH="/opt/oracle/bin:$PATH"\n'
        "export AIRFLOW__CORE__PARALLELISM=7\n"
        "unset SOME_OLD_SETTING\n"
        "not_exported=1\n"
    )
    env = pod.env(SOME_OLD_SETTING="x")
    prepared = prepare("worker", ["airflow", "celery", "worker"], env, log=lambda _: None)
    final = prepared.environment
    assert final["ORACLE_HOME"] == "/opt/oracle"
    assert final["PATH"].startswith("/opt/oracle/bin:")
    assert final["AIRFLOW__CORE__PARALLELISM"] == "7"
    assert "SOME_OLD_SETTING" not in final
    assert "not_exported" not in final
    assert final["MWAA_AIRFLOW_COMPONENT"] == "worker"
    assert final["AIRFLOW_PLATFORM_COMPONENT"] == "worker"
    assert prepared.argv == ["airflow", "celery", "worker"]


@pytest.mark.parametrize(
    ("component", "mwaa_name"),
    [
        ("scheduler", "scheduler"),
        ("dag-processor", "scheduler"),
        ("triggerer", "scheduler"),
        ("worker", "worker"),
        ("api-server", "webserver"),
        ("execution-api", "webserver"),
    ],
)
def test_component_name_seen_by_the_script(pod: PodDirs, component: str, mwaa_name: str) -> None:
    out = pod.root / "seen"
    pod.write_startup(f'printf "%s" "$MWAA_AIRFLOW_COMPONENT" > {out}\n')
    prepare(component, ["true"], pod.env(), log=lambda _: None)
    assert out.read_text() == mwaa_name


def test_migrations_skip_the_script(pod: PodDirs) -> None:
    marker = pod.root / "ran"
    pod.write_startup(f"touch {marker}\nexport FROM_STARTUP=1\n")
    prepared = prepare("migrations", ["airflow", "db", "migrate"], pod.env(), log=lambda _: None)
    assert not marker.exists()
    assert "FROM_STARTUP" not in prepared.environment


@pytest.mark.parametrize(
    "line",
    [
        "export AIRFLOW_HOME=/tmp/elsewhere",
        "export PYTHONPATH=/tmp/mine",
        "export AWS_REGION=eu-west-1",
        "export AIRFLOW__CORE__EXECUTOR=LocalExecutor",
        "export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD='cat /tmp/x'",
        "export MWAA__CORE__REQUIREMENTS_PATH=/tmp/r.txt",
        "export AIRFLOW_PLATFORM_REQUIREMENTS_ON_FAILURE=continue",
        "unset AWS_DEFAULT_REGION",
        "export AIRFLOW_CONFIG=/tmp/airflow.cfg",
        "export AIRFLOW__CORE__AUTH_MANAGER=my.AuthManager",
        "export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True",
        "export AIRFLOW__SMTP__SMTP_PASSWORD_CMD='cat /tmp/pw'",
        "export AIRFLOW__SMTP__SMTP_PASSWORD_SECRET=smtp",
        "export AIRFLOW__FAB__CONFIG_FILE=/tmp/webserver_config.py",
    ],
)
def test_protected_variables_are_refused_by_name(pod: PodDirs, line: str) -> None:
    name = line.split()[1].split("=")[0]
    pod.write_startup(f"export HARMLESS=1\n{line}\n")
    env = pod.env(AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1")
    with pytest.raises(BootstrapError) as caught:
        prepare("scheduler", ["airflow", "scheduler"], env, log=lambda _: None)
    message = str(caught.value)
    assert name in message and "protected" in message and "HARMLESS" not in message


def test_setting_a_protected_variable_to_its_own_value_is_fine(pod: PodDirs) -> None:
    pod.write_startup('export AWS_REGION="$AWS_REGION"\nexport OK=1\n')
    prepared = prepare("worker", ["true"], pod.env(AWS_REGION="us-east-1"), log=lambda _: None)
    assert prepared.environment["OK"] == "1"


def test_exit_inside_the_sourced_script_keeps_its_exports(pod: PodDirs) -> None:
    script = pod.write_startup("export EARLY=yes\nexit 0\nexport LATE=yes\n")
    result = run_startup_script(script, pod.env(), timeout=60)
    assert result.exported["EARLY"] == "yes" and "LATE" not in result.environment


def test_a_failing_script_stops_the_start(pod: PodDirs) -> None:
    pod.write_startup("echo broken >&2\nexit 4\n")
    with pytest.raises(BootstrapError, match="exited with code 4"):
        prepare("worker", ["true"], pod.env(), log=lambda _: None)


def test_the_time_limit_stops_a_slow_script_and_its_children(pod: PodDirs) -> None:
    pid_file = pod.root / "child.pid"
    pod.write_startup(f"sleep 300 &\necho $! > {pid_file}\nwait\n")
    env = pod.env(AIRFLOW_PLATFORM_STARTUP_TIMEOUT="1.5")
    with pytest.raises(BootstrapError) as caught:
        prepare("worker", ["true"], env, log=lambda _: None)
    assert "did not finish within 1.5 s" in str(caught.value)
    assert "AIRFLOW_PLATFORM_STARTUP_TIMEOUT" in str(caught.value)
    child = int(pid_file.read_text())
    # The whole process group was stopped: the background sleep is gone (or a zombie).
    status = Path(f"/proc/{child}/status")
    assert not status.exists() or "State:\tZ" in status.read_text()


def test_bad_settings_are_named(pod: PodDirs) -> None:
    with pytest.raises(BootstrapError, match="AIRFLOW_PLATFORM_STARTUP_TIMEOUT"):
        prepare("worker", ["true"], pod.env(AIRFLOW_PLATFORM_STARTUP_TIMEOUT="soon"))
    with pytest.raises(BootstrapError, match="AIRFLOW_PLATFORM_REQUIREMENTS_ON_FAILURE"):
        prepare("worker", ["true"], pod.env(AIRFLOW_PLATFORM_REQUIREMENTS_ON_FAILURE="maybe"))
    with pytest.raises(BootstrapError, match="--component 'webserver' is not known"):
        prepare("webserver", ["true"], pod.env())
    with pytest.raises(BootstrapError, match="no command to run"):
        prepare("worker", [], pod.env())
