"""Task logs in S3: logging.task.destination=s3 renders Airflow's remote logging to s3://, read by
the real Airflow as an S3 task handler using the pod's role."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import HelmError, container, env_of
from .test_airflow_reads_the_config import component_env

pytestmark = pytest.mark.chart

KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
S3 = {
    "logging": {
        "task": {"destination": "s3", "s3": {"bucket": "airflow-task-logs", "prefix": "prod/tasks"}}
    }
}
AIRFLOW_PODS = ("scheduler", "dag-processor", "triggerer", "api-server", "execution-api", "worker")

PROBE = """
import json
from airflow.configuration import conf
from airflow.logging_config import configure_logging, get_remote_task_log
configure_logging()
io = get_remote_task_log()
print(json.dumps({
    "io": type(io).__name__ if io else None,
    "base": getattr(io, "remote_base", None),
    "encrypt": conf.getboolean("logging", "encrypt_s3_logs"),
    "conn": conf.get("logging", "remote_log_conn_id"),
}))
"""


def _env(rendering, component: str = "worker") -> dict[str, dict]:
    return env_of(container(rendering.one("Deployment", component), component))


def test_s3_destination_renders_remote_logging_to_the_bucket(render) -> None:
    rendering = render(S3)
    for component in AIRFLOW_PODS:
        env = _env(rendering, component)
        assert env["AIRFLOW__LOGGING__REMOTE_LOGGING"]["value"] == "True"
        assert (
            env["AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER"]["value"]
            == "s3://airflow-task-logs/prod/tasks"
        )
        assert env["AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID"]["value"] == ""
        assert env["AIRFLOW__LOGGING__ENCRYPT_S3_LOGS"]["value"] == "True"


def test_a_kms_key_leaves_encryption_to_the_bucket_default(render) -> None:
    values = {
        "logging": {
            "task": {
                **S3["logging"]["task"],
                "s3": {"bucket": "airflow-task-logs", "kmsKeyId": KEY},
            }
        }
    }
    rendering = render(values)
    assert _env(rendering)["AIRFLOW__LOGGING__ENCRYPT_S3_LOGS"]["value"] == "False"
    environment = rendering.all("ConfigMap")
    assert any(KEY in json.dumps(cm.get("data", {})) for cm in environment)


def test_s3_does_not_need_cloudwatch_or_the_account_id(render) -> None:
    rendering = render(
        {
            **S3,
            "logging": {**S3["logging"], "cloudwatch": {"enabled": True}},
            "executionRoleArn": "",
        }
    )
    assert _env(rendering)["AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER"]["value"].startswith("s3://")


def test_cloudwatch_stays_the_default(default) -> None:
    assert _env(default)["AIRFLOW__LOGGING__REMOTE_LOGGING"]["value"] == "False"


@pytest.mark.parametrize(
    ("task", "pointer"),
    [
        ({"destination": "s3"}, "/logging/task/s3/bucket"),
        ({"destination": "s3", "s3": {"bucket": "Bad_Bucket"}}, "/logging/task/s3/bucket"),
        (
            {"destination": "s3", "s3": {"bucket": "b-1", "prefix": "/abs"}},
            "/logging/task/s3/prefix",
        ),
        (
            {"destination": "s3", "s3": {"bucket": "b-1", "kmsKeyId": "my-key"}},
            "/logging/task/s3/kmsKeyId",
        ),
        ({"destination": "gcs"}, "/logging/task/destination"),
    ],
)
def test_the_schema_refuses_incomplete_s3_settings(render, task, pointer) -> None:
    with pytest.raises(HelmError) as refused:
        render({"logging": {"task": task}})
    assert f"at '{pointer}" in refused.value.stderr


def test_airflow_uses_its_s3_task_handler_with_the_rendered_settings(
    render, tmp_path: Path
) -> None:
    env = component_env(render(S3), "worker", tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {
        "io": "S3RemoteLogIO",
        "base": "s3://airflow-task-logs/prod/tasks",
        "encrypt": True,
        "conn": "",
    }
