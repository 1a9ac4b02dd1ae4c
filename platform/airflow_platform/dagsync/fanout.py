"""Fan-out of S3 events to every dagsync process: S3 -> SNS topic -> one SQS queue per process.

A standard SQS queue hands each message to one consumer: with one queue shared by every pod,
an upload wakes one sidecar and the others wait for their reconcile, so a worker may be asked
to run a task from a file it has not synced yet. In fan-out mode each process owns a queue
subscribed to the topic (raw delivery: the body is S3's own notification), so every sidecar
hears every event. The queue lives as long as the process: created and subscribed at start,
unsubscribed and deleted on SIGTERM. Its heartbeat tag, refreshed while the process lives,
lets any other sidecar remove the queues of processes that could not clean up (reaper.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import ClientError

from airflow_platform.dagsync.aws import error_code, error_kind, is_missing_queue
from airflow_platform.dagsync.settings import TOPIC_ARN_RE, DagsyncSettings
from airflow_platform.dagsync.telemetry import Metrics

LOG = logging.getLogger("airflow_platform.dagsync.fanout")
TOPIC_FLAG = "--event-topic-arn/DAGSYNC_EVENT_TOPIC_ARN"

TAG_TOPIC = "dagsync:topic"
TAG_OWNER = "dagsync:owner"
TAG_POD_UID = "dagsync:pod-uid"
TAG_CREATED = "dagsync:created"
TAG_HEARTBEAT = "dagsync:heartbeat"
TAG_VALUE_MAX = 256  # SQS's limit on a tag value

QUEUE_ATTRIBUTES = {
    # An event older than this is covered by the periodic reconcile anyway.
    "MessageRetentionPeriod": "3600",
    "ReceiveMessageWaitTimeSeconds": "20",
    # A message stays invisible until the sync it triggered finished (then it is deleted).
    "VisibilityTimeout": "300",
    "SqsManagedSseEnabled": "true",
}

# Errors no retry fixes: a wrong or missing topic, a missing IAM permission.
_PERMANENT = {
    "NotFound",
    "InvalidParameter",
    "InvalidParameterValue",
    "AuthorizationError",
    "AccessDenied",
    "AccessDeniedException",
    "InvalidClientTokenId",
}
_UNAUTHORIZED = {"AuthorizationError", "AccessDenied", "AccessDeniedException"}


class EventSetupError(RuntimeError):
    """The event queue cannot be set up and retrying will not help; names the flag and fix."""


def topic_tag(topic_arn: str) -> str:
    """The value of the topic tag: the ARN, or its digest when longer than a tag may be."""
    if len(topic_arn) <= TAG_VALUE_MAX:
        return topic_arn
    return "sha256:" + hashlib.sha256(topic_arn.encode()).hexdigest()


def queue_name_of(url_or_arn: str) -> str:
    return url_or_arn.rstrip("/").replace(":", "/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class OwnQueue:
    name: str
    url: str
    arn: str
    subscription_arn: str


class FanoutQueue:
    """This process's queue on the topic: open() at start, heartbeat(), close() at exit."""

    def __init__(self, settings: DagsyncSettings, sqs: Any, sns: Any, metrics: Metrics) -> None:
        match = TOPIC_ARN_RE.match(settings.event_topic_arn)
        if match is None:  # settings validated it; this guards direct use
            raise EventSetupError(f"{TOPIC_FLAG} is not an SNS topic ARN")
        self.topic_arn = settings.event_topic_arn
        self.topic_tag = topic_tag(self.topic_arn)
        self.partition = match.group(1)
        self.prefix = settings.event_queue_prefix
        self.owner = settings.pod_name or socket.gethostname()
        self.pod_uid = settings.pod_uid
        self.sqs = sqs
        self.sns = sns
        self.metrics = metrics
        self.region = str(sqs.meta.region_name)
        self.account = ""  # learnt from the first queue URL
        self.current: OwnQueue | None = None
        self._closed = False  # no new queue once the process is stopping
        self._lock = threading.Lock()

    # -- naming ----------------------------------------------------------------------------
    def queue_arn(self, name: str) -> str:
        return f"arn:{self.partition}:sqs:{self.region}:{self.account}:{name}"

    def _new_name(self) -> str:
        # Random, not derived from the pod: SQS refuses for 60 s to re-create a name just
        # deleted, which a container restarting in the same pod would hit. Tags tell the owner.
        return self.prefix + secrets.token_hex(8)

    def _policy(self, queue_arn: str) -> str:
        return json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "EventsFromTheDagsTopicOnly",
                        "Effect": "Allow",
                        "Principal": {"Service": "sns.amazonaws.com"},
                        "Action": "sqs:SendMessage",
                        "Resource": queue_arn,
                        "Condition": {"ArnEquals": {"aws:SourceArn": self.topic_arn}},
                    }
                ],
            }
        )

    # -- lifecycle -------------------------------------------------------------------------
    def open(self) -> str:
        """Create, restrict, tag and subscribe a new queue; returns its URL.

        Raises EventSetupError when retrying cannot help; other errors are transient."""
        with self._lock:
            if self._closed:
                raise RuntimeError("dagsync is stopping; no new event queue")
            name = self._new_name()
            now = str(int(time.time()))
            tags = {
                TAG_TOPIC: self.topic_tag,
                TAG_OWNER: self.owner[:TAG_VALUE_MAX],
                TAG_CREATED: now,
                TAG_HEARTBEAT: now,
            }
            if self.pod_uid:
                tags[TAG_POD_UID] = self.pod_uid[:TAG_VALUE_MAX]
            try:
                url = self.sqs.create_queue(QueueName=name, Attributes=QUEUE_ATTRIBUTES, tags=tags)[
                    "QueueUrl"
                ]
            except ClientError as exc:
                raise self._classify("create the event queue " + name, exc) from exc
            self.account = urlparse(url).path.strip("/").split("/")[-2]
            arn = self.queue_arn(name)
            try:
                policy = {"Policy": self._policy(arn)}
                self.sqs.set_queue_attributes(QueueUrl=url, Attributes=policy)
                subscription = self.sns.subscribe(
                    TopicArn=self.topic_arn,
                    Protocol="sqs",
                    Endpoint=arn,
                    Attributes={"RawMessageDelivery": "true"},
                    ReturnSubscriptionArn=True,
                )["SubscriptionArn"]
            except ClientError as exc:
                self.delete_queue(url, name)
                raise self._classify(f"subscribe the queue {name} to the topic", exc) from exc
            except BaseException:
                self.delete_queue(url, name)
                raise
            self.current = OwnQueue(name, url, arn, subscription)
        self.metrics.event_subscriptions.labels("subscribe").inc()
        self.metrics.event_subscribed.set(1)
        self.metrics.event_heartbeat.set(float(now))
        LOG.info(
            "subscribed own event queue to the topic",
            extra={
                "event": "fanout",
                "action": "subscribe",
                "queue": name,
                "topic": self.topic_arn,
                "subscription": subscription,
            },
        )
        return str(url)

    def reopen(self) -> str:
        """The queue vanished (deleted by hand, or reaped after a long stall): start over."""
        self.close(reason="replaced")
        return self.open()

    def heartbeat(self) -> None:
        own = self.current
        if own is None:
            return
        now = time.time()
        try:
            self.sqs.tag_queue(QueueUrl=own.url, Tags={TAG_HEARTBEAT: str(int(now))})
        except ClientError as exc:
            if is_missing_queue(exc):
                LOG.warning(
                    "own event queue is gone; the listener creates a new one",
                    extra={"event": "fanout", "queue": own.name},
                )
                return
            raise
        self.metrics.event_heartbeat.set(now)

    def close(self, reason: str = "stopping") -> None:
        """Unsubscribe first (no more deliveries), then delete the queue. Best effort.
        After a close for "stopping", open() refuses (the listener may still try)."""
        with self._lock:
            self._closed = self._closed or reason == "stopping"
            own, self.current = self.current, None
            if own is None:
                return
            unsubscribed = self.unsubscribe(own.subscription_arn)
            deleted = self.delete_queue(own.url, own.name)
        self.metrics.event_subscribed.set(0)
        if unsubscribed:
            self.metrics.event_subscriptions.labels("unsubscribe").inc()
        LOG.info(
            "unsubscribed and deleted own event queue"
            if unsubscribed and deleted
            else "could not fully remove own event queue; another sidecar will reap it",
            extra={
                "event": "fanout",
                "action": "unsubscribe",
                "reason": reason,
                "queue": own.name,
                "subscription": own.subscription_arn,
                "unsubscribed": unsubscribed,
                "deleted": deleted,
            },
        )

    # -- helpers shared with the reaper ----------------------------------------------------
    def unsubscribe(self, subscription_arn: str) -> bool:
        """True when the subscription is gone (already gone counts)."""
        try:
            self.sns.unsubscribe(SubscriptionArn=subscription_arn)
        except Exception as exc:
            if isinstance(exc, ClientError) and error_code(exc) == "NotFound":
                return True
            LOG.warning(
                "could not unsubscribe",
                extra={"event": "fanout", "subscription": subscription_arn, "error": str(exc)},
            )
            return False
        return True

    def delete_queue(self, url: str, name: str) -> bool:
        """True when the queue is gone (already gone counts)."""
        try:
            self.sqs.delete_queue(QueueUrl=url)
        except Exception as exc:
            if isinstance(exc, ClientError) and is_missing_queue(exc):
                return True
            LOG.warning(
                "could not delete event queue",
                extra={"event": "fanout", "queue": name, "error": str(exc)},
            )
            return False
        return True

    def _classify(self, step: str, exc: ClientError) -> Exception:
        code = error_code(exc)
        if code not in _PERMANENT:
            return exc
        if code == "NotFound":
            fix = f"the topic {self.topic_arn} does not exist: check {TOPIC_FLAG}"
        elif code in _UNAUTHORIZED:
            fix = (
                "the pod's IAM role is not allowed to: grant the SQS/SNS actions listed in the "
                f"chart README (DAG sync) on queues named {self.prefix}* and on the topic "
                f"{self.topic_arn} ({TOPIC_FLAG})"
            )
        else:
            fix = f"check {TOPIC_FLAG} ({self.topic_arn})"
        message = exc.response.get("Error", {}).get("Message", "")
        return EventSetupError(f"cannot {step}: {code} {message}; {fix}")


class FanoutKeeper:
    """A thread that refreshes the heartbeat and, now and then, reaps orphans."""

    def __init__(
        self,
        fanout: FanoutQueue,
        reap: Callable[[], object],
        heartbeat_every: float,
        reap_every: float,
        stop: threading.Event,
        on_error: Callable[[str], None],
    ) -> None:
        self.fanout = fanout
        self.reap = reap
        self.heartbeat_every = heartbeat_every
        self.reap_every = reap_every
        self.stop = stop
        self.on_error = on_error
        self._thread = threading.Thread(target=self._run, name="dagsync-fanout", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        now = time.monotonic()
        next_beat = now + self.heartbeat_every
        next_reap = now  # a new pod cleans up after dead ones at once
        while not self.stop.is_set():
            if time.monotonic() >= next_reap:
                self._guarded("fanout_reap", self.reap)
                # Jitter keeps a fleet started together from reaping in lock-step.
                next_reap = time.monotonic() + self.reap_every * random.uniform(0.8, 1.2)
            if time.monotonic() >= next_beat:
                self._guarded("fanout_heartbeat", self.fanout.heartbeat)
                next_beat = time.monotonic() + self.heartbeat_every
            self.stop.wait(max(0.0, min(next_beat, next_reap) - time.monotonic()))

    def _guarded(self, what: str, step: Callable[[], object]) -> None:
        try:
            step()
        except Exception as exc:
            self.on_error(what)
            LOG.warning(
                f"{what} failed; retried later",
                extra={"event": "fanout", "kind": error_kind(exc), "error": str(exc)},
            )
