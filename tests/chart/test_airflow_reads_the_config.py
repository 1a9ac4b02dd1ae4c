"""The rendered environment is read by the real Airflow 3.3.2 as intended: the Celery/SQS
settings, the secrets backend and the MWAA defaults, exactly as a component would see them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import container, env_of

pytestmark = pytest.mark.chart

PROBE = """
import json
from airflow.configuration import conf
from airflow.providers.celery.executors.default_celery import get_default_celery_config

celery = get_default_celery_config(conf)
backend = conf._get_custom_secret_backend()
print(json.dumps({
    "executor": conf.get("core", "executor"),
    "broker_url": celery["broker_url"],
    "transport": celery["broker_transport_options"],
    "concurrency": conf.getint("celery", "worker_concurrency"),
    "remote_control": conf.getboolean("celery", "worker_enable_remote_control"),
    "operation_timeout": conf.getfloat("celery", "operation_timeout"),
    "dags_folder": conf.get("core", "dags_folder"),
    "load_examples": conf.getboolean("core", "load_examples"),
    "queued_timeout": conf.getfloat("scheduler", "task_queued_timeout"),
    "backend": type(backend).__name__ if backend else None,
    "backend_lookup": getattr(backend, "connections_lookup_pattern", None),
    "remote_base_log_folder": conf.get("logging", "remote_base_log_folder"),
}))
"""


def component_env(rendering, component: str, home: Path) -> dict[str, str]:
    """The container's environment as the kubelet would give it, with stand-ins for the
    Secret and downward-API references and a writable AIRFLOW_HOME."""
    env: dict[str, str] = {}
    for name, entry in env_of(container(rendering.one("Deployment", component), component)).items():
        if "value" in entry:
            env[name] = entry["value"]
        elif "secretKeyRef" in entry["valueFrom"]:
            env[name] = "postgresql://stand-in@127.0.0.1:1/airflow" if "CONN" in name else "x" * 32
        else:
            env[name] = "127.0.0.1"
    env["AIRFLOW_HOME"] = str(home)
    env["PATH"] = str(Path(sys.executable).parent)
    return env


def read_config(rendering, tmp_path: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=component_env(rendering, "worker", tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_airflow_reads_celery_on_sqs_and_secrets_manager(eks, tmp_path) -> None:
    seen = read_config(eks, tmp_path)
    assert seen["executor"] == "CeleryExecutor"
    assert seen["broker_url"] == "sqs://"
    assert seen["transport"]["predefined_queues"] == {
        "default": {"url": "https://sqs.eu-west-1.amazonaws.com/123456789012/analytics-prod-celery"}
    }
    assert seen["transport"]["visibility_timeout"] == 43200
    assert seen["transport"]["is_secure"] is True
    assert seen["transport"]["region"] == "eu-west-1"
    assert seen["concurrency"] == 10
    assert seen["remote_control"] is False
    assert seen["operation_timeout"] == 30.0
    assert seen["dags_folder"] == "/opt/airflow/sync/dags/current"
    assert seen["load_examples"] is False
    assert seen["queued_timeout"] == 1800.0
    assert seen["backend"] == "SecretsManagerBackend"
    assert seen["backend_lookup"] == "^(?!aws_default$).*$"
    assert seen["remote_base_log_folder"].startswith("cloudwatch://arn:aws:logs:eu-west-1:")
    assert not (tmp_path / "airflow.cfg").exists(), "no config file is written in the pod"


def test_airflow_reads_the_vault_backend(render, tmp_path) -> None:
    seen = read_config(render(files=("vault-values.yaml",)), tmp_path)
    assert seen["backend"] == "VaultBackend"
