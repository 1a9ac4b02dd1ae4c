"""The chart's workers follow the scaling policy of airflow_platform.scaling: the rendering is
compared with the functions that define it (Celery drain settings, grace period, KEDA
ScaledObject), so the two cannot drift apart."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from airflow_platform.scaling.celery_settings import (
    termination_grace_seconds,
    worker_celery_environment,
)
from airflow_platform.scaling.keda import scaled_object_spec
from airflow_platform.scaling.policy import PolicyConfig

from .conftest import CHART, HelmError, container, env_values, pod_spec

pytestmark = pytest.mark.chart

# (ci files, values, tasks per worker the class or values give)
CASES: dict[str, tuple[tuple[str, ...], dict[str, Any], int]] = {
    "default": (("default-values.yaml",), {}, 5),
    "eks-medium": (("eks-values.yaml",), {}, 10),
    "custom": (
        ("default-values.yaml",),
        {
            "celery": {"visibilityTimeout": 3600},
            "workers": {
                "minWorkers": 2,
                "maxWorkers": 7,
                "tasksPerWorker": 3,
                "scaleInIdleSeconds": 45,
                "gracefulTimeoutSeconds": 3000,
                "keda": {"pollingInterval": 10, "sqsTrigger": False},
            },
        },
        3,
    ),
}


def _values(case: str) -> dict[str, Any]:
    """The effective workers/celery values of a case (chart defaults, ci files, overrides)."""
    files, override, _ = CASES[case]
    merged: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    for layer in [yaml.safe_load((CHART / "ci" / f).read_text()) for f in files] + [override]:
        for key in ("workers", "celery"):
            for name, value in (layer.get(key) or {}).items():
                if isinstance(value, dict):
                    merged[key][name] = {**merged[key][name], **value}
                else:
                    merged[key][name] = value
    return merged


@pytest.fixture(params=sorted(CASES))
def case(request, render):
    files, override, tasks = CASES[request.param]
    return render(override, files=files), _values(request.param), tasks


def test_worker_environment_carries_the_policy_drain_settings(case) -> None:
    rendering, values, tasks = case
    expected = worker_celery_environment(tasks, values["celery"]["visibilityTimeout"])
    # Workers consume with these settings; the scheduler's Celery client is configured alike.
    for component in ("worker", "scheduler"):
        env = env_values(container(rendering.one("Deployment", component), component))
        assert {k: env.get(k) for k in expected} == expected, component


def test_grace_period_follows_the_policy(case) -> None:
    rendering, values, _ = case
    w = values["workers"]
    expected = termination_grace_seconds(
        w["replacementStrategy"], w["gracefulTimeoutSeconds"], values["celery"]["visibilityTimeout"]
    )
    assert pod_spec(rendering.one("Deployment", "worker"))["terminationGracePeriodSeconds"] == (
        expected
    )


def test_scaled_object_is_the_policy_spec(case) -> None:
    rendering, values, tasks = case
    w = values["workers"]
    scaled = rendering.one("ScaledObject", "worker")
    auth = rendering.one("TriggerAuthentication", "keda-database")["metadata"]["name"]
    expected = scaled_object_spec(
        PolicyConfig(w["minWorkers"], w["maxWorkers"], tasks, w["scaleInIdleSeconds"]),
        polling_interval=w["keda"]["pollingInterval"],
        auth_name=auth,
    )
    spec = dict(scaled["spec"])
    target = spec.pop("scaleTargetRef")
    assert target["name"] == rendering.one("Deployment", "worker")["metadata"]["name"]
    # The SQS backlog trigger is the chart's addition: it can raise the count, never lower it.
    sqs = [t for t in spec["triggers"] if t["type"] == "aws-sqs-queue"]
    spec["triggers"] = [t for t in spec["triggers"] if t["type"] != "aws-sqs-queue"]
    assert spec == expected
    assert len(sqs) == (1 if w["keda"]["sqsTrigger"] else 0)


def test_forced_timeout_default_is_the_policy_value(render) -> None:
    worker = render({"workers": {"replacementStrategy": "FORCED"}}).one("Deployment", "worker")
    assert pod_spec(worker)["terminationGracePeriodSeconds"] == termination_grace_seconds(
        "FORCED", 43200, 43200
    )
    custom = render({"workers": {"replacementStrategy": "FORCED", "forcedTimeoutSeconds": 90}})
    assert pod_spec(custom.one("Deployment", "worker"))["terminationGracePeriodSeconds"] == 90


@pytest.mark.parametrize(
    ("strategy", "surge"), [("GRACEFUL", "25%"), ("FORCED", "100%")], ids=str.lower
)
def test_update_strategy_starts_new_workers_before_stopping_old_ones(
    render, strategy, surge
) -> None:
    worker = render({"workers": {"replacementStrategy": strategy}}).one("Deployment", "worker")
    assert worker["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": surge, "maxUnavailable": 0},
    }


def test_graceful_timeout_beyond_the_visibility_timeout_is_refused(render) -> None:
    values = {"celery": {"visibilityTimeout": 600}, "workers": {"gracefulTimeoutSeconds": 900}}
    with pytest.raises(HelmError) as refused:
        render(values)
    message = refused.value.stderr
    assert "workers.gracefulTimeoutSeconds (900) exceeds celery.visibilityTimeout (600)" in message
    assert "Lower workers.gracefulTimeoutSeconds" in message
    assert "VisibilityTimeout attribute" in message
    # The policy refuses the same pair; FORCED does not wait, so the pair is fine there.
    with pytest.raises(ValueError, match=r"exceeds celery\.visibilityTimeout"):
        termination_grace_seconds("GRACEFUL", 900, 600)
    forced = render(
        {**values, "workers": {"gracefulTimeoutSeconds": 900, "replacementStrategy": "FORCED"}}
    )
    assert pod_spec(forced.one("Deployment", "worker"))["terminationGracePeriodSeconds"] == 30


def test_visibility_timeout_docs_say_the_queue_attribute_counts() -> None:
    values_text = (CHART / "values.yaml").read_text()
    comment = values_text.split("visibilityTimeout: 43200")[0].rsplit("sqsQueueUrl", 1)[1]
    schema = json.loads((CHART / "values.schema.json").read_text())
    description = schema["properties"]["celery"]["properties"]["visibilityTimeout"]["description"]
    readme = (CHART / "README.md").read_text()
    for text in (comment, description, readme):
        assert "VisibilityTimeout attribute" in " ".join(text.replace("#", " ").split())
