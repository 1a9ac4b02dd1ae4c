"""Fan-out mode (--event-topic-arn): S3 -> SNS topic -> one SQS queue per dagsync process,
so every pod's sidecar hears every upload, not only the one SQS happened to hand it to.
Real moto server: S3 publishes to the topic, SNS delivers to each subscribed queue."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_platform.dagsync.fanout import (
    TAG_CREATED,
    TAG_HEARTBEAT,
    TAG_OWNER,
    TAG_POD_UID,
    TAG_TOPIC,
    FanoutQueue,
)
from airflow_platform.dagsync.reaper import MAX_REAPED, Reaper
from airflow_platform.dagsync.settings import SettingsError, build_settings
from airflow_platform.dagsync.telemetry import Metrics
from airflow_platform.paths import SyncLayout
from airflow_platform.procs import ManagedProcess, tail, wait_until

from .support import CLI, cli_env, metric, new_bucket, start_loop

pytestmark = pytest.mark.integration

SIDECARS = 3


def wire_topic(s3c: Any, snsc: Any, bucket: str) -> str:
    """A standard topic receiving the bucket's S3 event notifications."""
    topic = snsc.create_topic(Name=f"dag-events-{uuid.uuid4().hex[:8]}")["TopicArn"]
    s3c.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "TopicConfigurations": [
                {"TopicArn": topic, "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}
            ]
        },
    )
    return topic


def queues(sqsc: Any, prefix: str) -> dict[str, dict[str, str]]:
    """Queues named with `prefix` and their tags."""
    found = {}
    for url in sqsc.list_queues(QueueNamePrefix=prefix).get("QueueUrls", []):
        found[url.rsplit("/", 1)[-1]] = sqsc.list_queue_tags(QueueUrl=url).get("Tags", {})
    return found


def subscriptions(snsc: Any, topic: str) -> dict[str, str]:
    """Queue name -> subscription ARN for the topic's SQS subscriptions."""
    subs = snsc.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    return {s["Endpoint"].rsplit(":", 1)[-1]: s["SubscriptionArn"] for s in subs}


def queue_of(sqsc: Any, prefix: str, owner: str) -> str:
    [name] = [n for n, tags in queues(sqsc, prefix).items() if tags.get(TAG_OWNER) == owner]
    return name


def queue_url(sqsc: Any, name: str) -> str:
    return str(sqsc.get_queue_url(QueueName=name)["QueueUrl"])


@dataclass
class Sidecar:
    name: str
    proc: ManagedProcess
    url: str
    dags: Path

    def metrics(self) -> str:
        return httpx.get(f"{self.url}/metrics").text


@dataclass
class Fleet:
    bucket: str
    topic: str
    prefix: str
    sidecars: list[Sidecar]


def sync_log(sidecar: Sidecar) -> list[dict[str, Any]]:
    """The sidecar's successful sync cycles, as it logged them."""
    lines = sidecar.proc.log_path.read_text().splitlines()
    logged = [json.loads(line) for line in lines if line.startswith("{")]
    return [
        line for line in logged if line.get("event") == "sync" and line.get("result") == "success"
    ]


@pytest.fixture
def fleet(s3c: Any, snsc: Any, aws: str, tmp_path: Path) -> Iterator[Fleet]:
    """Three sidecars (as in three pods) on one bucket and topic, reconcile an hour away."""
    bucket = new_bucket(s3c)
    topic = wire_topic(s3c, snsc, bucket)
    prefix = f"fan{uuid.uuid4().hex[:6]}-"
    s3c.put_object(Bucket=bucket, Key="dags/first.py", Body=b"first\n")
    sidecars: list[Sidecar] = []
    try:
        for i in range(SIDECARS):
            name = f"pod-{i}"
            proc, url = start_loop(
                tmp_path / name,
                aws,
                *("--bucket", bucket, "--interval", "3600", "--event-topic-arn", topic),
                *("--event-queue-prefix", prefix, "--event-heartbeat", "1"),
                env={"DAGSYNC_POD_NAME": name},
            )
            sidecars.append(Sidecar(name, proc, url, SyncLayout(tmp_path / name / "root").dags))
        for sidecar in sidecars:
            wait_until(
                lambda s=sidecar: httpx.get(f"{s.url}/readyz").status_code == 200,
                90,
                f"{sidecar.name} ready",
            )
        yield Fleet(bucket, topic, prefix, sidecars)
    finally:
        for sidecar in sidecars:
            sidecar.proc.stop()


def test_every_sidecar_hears_every_upload(fleet: Fleet, s3c: Any, sqsc: Any, snsc: Any) -> None:
    own = queues(sqsc, fleet.prefix)
    assert sorted(tags[TAG_OWNER] for tags in own.values()) == ["pod-0", "pod-1", "pod-2"]
    assert all(tags[TAG_TOPIC] == fleet.topic for tags in own.values())
    subs = subscriptions(snsc, fleet.topic)
    assert set(subs) == set(own)
    for name, arn in subs.items():
        assert (
            snsc.get_subscription_attributes(SubscriptionArn=arn)["Attributes"][
                "RawMessageDelivery"
            ]
            == "true"
        )
        policy = json.loads(
            sqsc.get_queue_attributes(QueueUrl=queue_url(sqsc, name), AttributeNames=["Policy"])[
                "Attributes"
            ]["Policy"]
        )
        [statement] = policy["Statement"]
        assert statement["Principal"] == {"Service": "sns.amazonaws.com"}
        assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": fleet.topic}}

    s3c.put_object(Bucket=fleet.bucket, Key="dags/new.py", Body=b"new\n")
    s3c.put_object(Bucket=fleet.bucket, Key="dags/first.py", Body=b"first, changed\n")
    for s in fleet.sidecars:
        wait_until(
            lambda s=s: (
                (s.dags / "new.py").exists()
                and (s.dags / "first.py").read_bytes() == b"first, changed\n"
            ),
            60,
            f"the upload in {s.name}'s DAGs folder",
        )
    for s in fleet.sidecars:
        # What each pod's own events brought: the cycles triggered by an event on its queue
        # (the reconcile is an hour away) added new.py and changed first.py. The log line
        # follows the publish, so it is waited for too.
        def heard(s: Sidecar = s) -> bool:
            by_event = [line for line in sync_log(s) if line.get("trigger") == "event"]
            added = {key for line in by_event for key in line.get("added_keys", [])}
            changed = {key for line in by_event for key in line.get("changed_keys", [])}
            return "new.py" in added and "first.py" in changed

        wait_until(heard, 60, f"{s.name}'s event-triggered syncs to bring both uploads")
        text = s.metrics()
        assert metric(text, "dagsync_event_subscribed") == 1
        assert metric(text, "dagsync_event_subscriptions_total", action="subscribe") == 1

    # Each sidecar keeps its queue's heartbeat fresh (every second here).
    def heartbeats_moved() -> bool:
        tags = queues(sqsc, fleet.prefix).values()
        return all(int(t[TAG_HEARTBEAT]) > int(t[TAG_CREATED]) for t in tags)

    wait_until(heartbeats_moved, 60, "heartbeat tags to advance")


def test_sigterm_unsubscribes_and_deletes_the_queue(
    fleet: Fleet, s3c: Any, sqsc: Any, snsc: Any
) -> None:
    leaving, *staying = fleet.sidecars
    name = queue_of(sqsc, fleet.prefix, leaving.name)
    assert name in subscriptions(snsc, fleet.topic)
    leaving.proc.stop()
    assert leaving.proc.proc is not None and leaving.proc.proc.returncode == 0, tail(
        leaving.proc.log_path
    )
    assert name not in queues(sqsc, fleet.prefix)
    assert name not in subscriptions(snsc, fleet.topic)
    assert len(queues(sqsc, fleet.prefix)) == SIDECARS - 1
    logged = [json.loads(line) for line in leaving.proc.log_path.read_text().splitlines()]
    [goodbye] = [x for x in logged if x.get("action") == "unsubscribe"]
    assert goodbye["queue"] == name and goodbye["unsubscribed"] and goodbye["deleted"]

    # The others still hear uploads.
    s3c.put_object(Bucket=fleet.bucket, Key="dags/after.py", Body=b"after\n")
    for s in staying:
        wait_until(lambda s=s: (s.dags / "after.py").exists(), 60, f"the upload in {s.name}")
    for s in staying:
        s.proc.stop()
    assert queues(sqsc, fleet.prefix) == {}
    assert subscriptions(snsc, fleet.topic) == {}


def make_queue(sqsc: Any, name: str, **tags: str) -> str:
    return str(sqsc.create_queue(QueueName=name, tags=tags)["QueueUrl"])


def subscribe(snsc: Any, topic: str, name: str) -> str:
    arn = f"arn:aws:sqs:us-east-1:123456789012:{name}"
    return str(
        snsc.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, ReturnSubscriptionArn=True)[
            "SubscriptionArn"
        ]
    )


def test_orphans_are_reaped_by_another_sidecar(
    s3c: Any, sqsc: Any, snsc: Any, aws: str, tmp_path: Path
) -> None:
    bucket = new_bucket(s3c)
    topic = wire_topic(s3c, snsc, bucket)
    prefix = f"orph{uuid.uuid4().hex[:6]}-"
    now = int(time.time())
    stale, fresh = str(now - 7200), str(now)
    mine = {TAG_TOPIC: topic}
    make_queue(sqsc, prefix + "dead", **mine, **{TAG_HEARTBEAT: stale, TAG_OWNER: "pod-x"})
    make_queue(sqsc, prefix + "alive", **mine, **{TAG_HEARTBEAT: fresh})
    make_queue(sqsc, prefix + "earlier", **mine, **{TAG_HEARTBEAT: fresh, TAG_POD_UID: "uid-1"})
    other_env = {TAG_TOPIC: topic + "-other", TAG_HEARTBEAT: stale}
    make_queue(sqsc, prefix + "foreign", **other_env)
    make_queue(sqsc, prefix + "untagged")
    for name in ("dead", "alive", "earlier", "gone"):  # "gone": a queue deleted, still subscribed
        subscribe(snsc, topic, prefix + name)

    proc, url = start_loop(
        tmp_path,
        aws,
        *("--bucket", bucket, "--interval", "3600", "--event-topic-arn", topic),
        *("--event-queue-prefix", prefix),
        env={"DAGSYNC_POD_UID": "uid-1"},
    )
    try:

        def reaped() -> bool:
            left = set(queues(sqsc, prefix))
            return not {prefix + "dead", prefix + "earlier"} & left and (
                prefix + "gone" not in subscriptions(snsc, topic)
            )

        wait_until(reaped, 60, "the orphans to be reaped")
        left = queues(sqsc, prefix)
        assert {prefix + n for n in ("alive", "foreign", "untagged")} < set(left)
        subs = subscriptions(snsc, topic)
        assert prefix + "alive" in subs
        assert not {prefix + "dead", prefix + "earlier"} & set(subs)
        text = httpx.get(f"{url}/metrics").text
        assert metric(text, "dagsync_event_orphans_reaped_total", kind="queue", reason="stale") == 1
        assert (
            metric(text, "dagsync_event_orphans_reaped_total", kind="queue", reason="replaced") == 1
        )
        assert (
            metric(
                text,
                "dagsync_event_orphans_reaped_total",
                kind="subscription",
                reason="queue_gone",
            )
            == 1
        )
        logged = [json.loads(x) for x in proc.log_path.read_text().splitlines()]
        reaps = {x["queue"]: x["reason"] for x in logged if x.get("action") == "reap"}
        assert reaps == {
            prefix + "dead": "stale",
            prefix + "earlier": "replaced",
            prefix + "gone": "queue_gone",
        }
    finally:
        proc.stop()


def test_a_reaping_pass_is_bounded(s3c: Any, sqsc: Any, snsc: Any, aws: str) -> None:
    topic = wire_topic(s3c, snsc, new_bucket(s3c))
    prefix = f"bound{uuid.uuid4().hex[:6]}-"
    settings = build_settings(
        bucket="unused-bucket", event_topic_arn=topic, event_queue_prefix=prefix
    )
    fanout = FanoutQueue(settings, sqsc, snsc, Metrics())
    fanout.open()
    try:
        for i in range(MAX_REAPED + 2):
            make_queue(sqsc, f"{prefix}old{i:02d}", **{TAG_TOPIC: topic, TAG_HEARTBEAT: "1"})
        reaper = Reaper(fanout, settings.event_orphan_after)
        first = reaper.run_pass()
        assert len(first.queues) == MAX_REAPED and first.deferred
        second = reaper.run_pass()
        assert len(second.queues) == 2 and not second.deferred
        assert {reason for _, reason in first.queues + second.queues} == {"stale"}
        assert set(queues(sqsc, prefix)) == {fanout.current.name}  # type: ignore[union-attr]
    finally:
        fanout.close()
    assert queues(sqsc, prefix) == {}


def test_a_vanished_queue_is_recreated(
    s3c: Any, sqsc: Any, snsc: Any, aws: str, tmp_path: Path
) -> None:
    bucket = new_bucket(s3c)
    topic = wire_topic(s3c, snsc, bucket)
    prefix = f"gone{uuid.uuid4().hex[:6]}-"
    proc, url = start_loop(
        tmp_path,
        aws,
        *("--bucket", bucket, "--interval", "3600", "--event-topic-arn", topic),
        *("--event-queue-prefix", prefix),
    )
    dags = SyncLayout(tmp_path / "root").dags
    try:
        wait_until(lambda: httpx.get(f"{url}/readyz").status_code == 200, 90, "readiness")
        [first] = queues(sqsc, prefix)
        sqsc.delete_queue(QueueUrl=queue_url(sqsc, first))
        wait_until(lambda: set(queues(sqsc, prefix)) - {first}, 90, "a new queue for the sidecar")
        [second] = queues(sqsc, prefix)
        assert set(subscriptions(snsc, topic)) == {second}  # the dead one was unsubscribed
        s3c.put_object(Bucket=bucket, Key="dags/later.py", Body=b"later\n")
        wait_until(lambda: (dags / "later.py").exists(), 60, "the upload after the new queue")
        text = httpx.get(f"{url}/metrics").text
        assert metric(text, "dagsync_event_subscriptions_total", action="subscribe") == 2
        assert metric(text, "dagsync_syncs_total", trigger="reconcile", result="success") == 1
    finally:
        proc.stop()


def run_loop(endpoint: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, "dagsync", "--health-port", "0", *args],
        env=cli_env(endpoint, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_bad_topic_gives_a_clear_error(s3c: Any, sqsc: Any, aws: str, tmp_path: Path) -> None:
    bucket = new_bucket(s3c)
    base = ("--bucket", bucket, "--root", str(tmp_path / "root"))
    queue_instead = "https://sqs.us-east-1.amazonaws.com/123456789012/dag-events"
    done = run_loop(aws, *base, DAGSYNC_EVENT_TOPIC_ARN=queue_instead)
    assert done.returncode == 2, done.stderr
    assert "--event-topic-arn/DAGSYNC_EVENT_TOPIC_ARN" in done.stderr
    assert "--event-queue-url" in done.stderr  # the hint for a queue URL given by mistake

    done = run_loop(aws, *base, "--event-topic-arn", "arn:aws:sns:us-east-1:123456789012:x.fifo")
    assert done.returncode == 2 and "standard" in done.stderr

    topic = "arn:aws:sns:us-east-1:123456789012:dag-events"
    done = run_loop(aws, *base, "--event-topic-arn", topic, "--event-queue-url", queue_instead)
    assert done.returncode == 2
    assert "--event-queue-url/DAGSYNC_EVENT_QUEUE_URL" in done.stderr and "not both" in done.stderr

    prefix = f"miss{uuid.uuid4().hex[:6]}-"
    missing = f"arn:aws:sns:us-east-1:123456789012:missing-{uuid.uuid4().hex[:8]}"
    done = run_loop(aws, *base, "--event-topic-arn", missing, "--event-queue-prefix", prefix)
    assert done.returncode == 2, done.stderr
    assert "does not exist" in done.stderr and "--event-topic-arn" in done.stderr
    assert queues(sqsc, prefix) == {}  # the queue made before the failed subscribe is gone


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"event_queue_prefix": "has space"}, "--event-queue-prefix/DAGSYNC_EVENT_QUEUE_PREFIX"),
        ({"event_queue_prefix": "x" * 61}, "--event-queue-prefix/DAGSYNC_EVENT_QUEUE_PREFIX"),
        ({"event_heartbeat": 0}, "--event-heartbeat/DAGSYNC_EVENT_HEARTBEAT"),
        (
            {"event_heartbeat": 60, "event_orphan_after": 120},
            "--event-orphan-after/DAGSYNC_EVENT_ORPHAN_AFTER",
        ),
        ({"event_topic_arn": "dag-events"}, "arn:aws:sns:eu-west-1:123456789012:dag-events"),
    ],
)
def test_fanout_settings_name_the_flag(values: dict[str, Any], expected: str) -> None:
    with pytest.raises(SettingsError) as refused:
        build_settings(bucket="my-bucket", **values)
    assert expected in str(refused.value)
