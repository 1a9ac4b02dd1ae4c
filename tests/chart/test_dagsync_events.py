"""dagsync's S3-event wiring: with dags.sync.eventTopicArn every dagsync container (init and
sidecar, in every Airflow pod) gets the topic, the queue-name prefix its IAM policy is scoped
to, and its pod's name and UID; bad ARNs and prefixes are refused by helm naming the field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from .conftest import AIRFLOW_COMPONENTS, HelmError, Rendering, container, env_of, env_values

pytestmark = pytest.mark.chart

TOPIC = "arn:aws:sns:eu-west-1:123456789012:analytics-prod-dag-events"
QUEUE = "https://sqs.eu-west-1.amazonaws.com/123456789012/analytics-prod-dag-events"
DAGSYNC_CONTAINERS = ("dagsync-init", "dagsync")


def with_sync(render: Callable[..., Rendering], **sync: Any) -> Rendering:
    return render({"dags": {"sync": sync}})


@pytest.mark.parametrize("component", AIRFLOW_COMPONENTS)
def test_topic_reaches_every_dagsync_container(render, component) -> None:
    deployment = with_sync(render, eventTopicArn=TOPIC).one("Deployment", component)
    for name in DAGSYNC_CONTAINERS:
        c = container(deployment, name)
        env = env_values(c)
        assert env["DAGSYNC_EVENT_TOPIC_ARN"] == TOPIC
        assert env["DAGSYNC_EVENT_QUEUE_PREFIX"] == "dagsync-airflow-"  # environmentName
        assert "DAGSYNC_EVENT_QUEUE_URL" not in env
        entries = env_of(c)
        assert entries["DAGSYNC_POD_NAME"]["valueFrom"] == {
            "fieldRef": {"fieldPath": "metadata.name"}
        }
        assert entries["DAGSYNC_POD_UID"]["valueFrom"] == {
            "fieldRef": {"fieldPath": "metadata.uid"}
        }


def test_no_topic_no_fanout_env(default) -> None:
    for component in AIRFLOW_COMPONENTS:
        for name in DAGSYNC_CONTAINERS:
            env = env_of(container(default.one("Deployment", component), name))
            assert not {
                "DAGSYNC_EVENT_TOPIC_ARN",
                "DAGSYNC_EVENT_QUEUE_PREFIX",
                "DAGSYNC_POD_NAME",
                "DAGSYNC_POD_UID",
            } & set(env), (component, name)


def test_queue_prefix_value_and_default(render) -> None:
    custom = with_sync(render, eventTopicArn=TOPIC, eventQueuePrefix="prod_dags-")
    env = env_values(container(custom.one("Deployment", "worker"), "dagsync"))
    assert env["DAGSYNC_EVENT_QUEUE_PREFIX"] == "prod_dags-"
    long_name = render({"environmentName": "a" * 80, "dags": {"sync": {"eventTopicArn": TOPIC}}})
    prefix = env_values(container(long_name.one("Deployment", "worker"), "dagsync"))[
        "DAGSYNC_EVENT_QUEUE_PREFIX"
    ]
    # dagsync accepts at most 60 characters (SQS names stop at 80, 16 go to the token).
    assert prefix.startswith("dagsync-aaa") and prefix.endswith("-") and len(prefix) == 60


def test_single_queue_mode_is_unchanged(render) -> None:
    env = env_values(
        container(with_sync(render, eventQueueUrl=QUEUE).one("Deployment", "worker"), "dagsync")
    )
    assert env["DAGSYNC_EVENT_QUEUE_URL"] == QUEUE
    assert "DAGSYNC_EVENT_TOPIC_ARN" not in env


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (QUEUE, "eventTopicArn"),  # a queue URL where the topic belongs
        ("arn:aws:sqs:eu-west-1:123456789012:dag-events", "eventTopicArn"),
        ("arn:aws:sns:eu-west-1:123456789012:dag-events.fifo", "eventTopicArn"),
        ("arn:aws:sns:eu-west-1:1234:dag-events", "eventTopicArn"),
        ("arn:aws:sns:eu-west-1:123456789012:", "eventTopicArn"),
    ],
)
def test_schema_refuses_a_bad_topic_arn(render, value, field) -> None:
    with pytest.raises(HelmError) as refused:
        with_sync(render, eventTopicArn=value)
    assert f"/dags/sync/{field}" in refused.value.stderr


@pytest.mark.parametrize("prefix", ["has space-", "dots.are.bad", "x" * 61])
def test_schema_refuses_a_bad_queue_prefix(render, prefix) -> None:
    with pytest.raises(HelmError) as refused:
        with_sync(render, eventTopicArn=TOPIC, eventQueuePrefix=prefix)
    assert "/dags/sync/eventQueuePrefix" in refused.value.stderr


def test_schema_accepts_other_partitions(render) -> None:
    cn = "arn:aws-cn:sns:cn-north-1:123456789012:dag-events"
    env = env_values(
        container(with_sync(render, eventTopicArn=cn).one("Deployment", "scheduler"), "dagsync")
    )
    assert env["DAGSYNC_EVENT_TOPIC_ARN"] == cn


def test_topic_and_queue_together_are_refused(render) -> None:
    with pytest.raises(HelmError) as refused:
        with_sync(render, eventTopicArn=TOPIC, eventQueueUrl=QUEUE)
    message = refused.value.stderr
    assert "dags.sync.eventTopicArn" in message and "dags.sync.eventQueueUrl" in message
