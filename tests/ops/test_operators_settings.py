"""The canary's settings come from the environment the chart renders; the cross-environment
trigger finds the other environment's API URL in its connection."""

from __future__ import annotations

import pytest

from airflow_platform.operators.canary import DEFAULT_SCHEDULE, canary_settings, probe_task_id


def test_canary_settings_follow_the_rendered_environment() -> None:
    settings = canary_settings({"AIRFLOW_PLATFORM_CANARY_SCHEDULE": "*/2 * * * *",
                                "AIRFLOW_PLATFORM_CANARY_QUEUES": "default, gpu ,"})  # fmt: skip
    assert settings.schedule == "*/2 * * * *"
    assert settings.queues == ("default", "gpu")
    assert canary_settings({}) == type(settings)(DEFAULT_SCHEDULE, ("default",))


def test_each_queue_gets_a_valid_task_id() -> None:
    assert probe_task_id("default") == "probe_default"
    assert probe_task_id("gpu.large:v2") == "probe_gpu_large_v2"


@pytest.mark.parametrize(
    ("host", "schema", "port", "url"),
    [
        ("https://airflow.team-b.example.com", None, None, "https://airflow.team-b.example.com"),
        ("airflow.team-b.example.com", None, None, "https://airflow.team-b.example.com"),
        ("127.0.0.1", "http", 8080, "http://127.0.0.1:8080"),
        ("http://127.0.0.1:8080/", None, None, "http://127.0.0.1:8080"),
    ],
)
def test_the_trigger_reads_the_api_url_from_its_connection(host, schema, port, url) -> None:
    from airflow.sdk import Connection

    from airflow_platform.operators import PlatformTriggerDagRunOperator

    op = PlatformTriggerDagRunOperator(task_id="t", environment_conn_id="other",
                                       trigger_dag_id="d")  # fmt: skip
    conn = Connection(conn_id="other", conn_type="http", host=host, schema=schema, port=port)
    assert op._base_url(conn) == url
