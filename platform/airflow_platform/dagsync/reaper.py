"""Removal of the event queues (and their subscriptions) of dagsync processes that died
without cleaning up: a pod killed with SIGKILL, a lost node, a container restarted in place.

Every sidecar runs a pass now and then. A queue is an orphan when it carries this
environment's topic tag and either its heartbeat is older than --event-orphan-after, or it
belongs to an earlier container of this very pod (same pod UID, a name that is not ours).
Queues without the topic tag (other environments sharing the prefix, strangers) are never
touched. A pass removes a bounded number of queues; several sidecars racing for the same
orphan is harmless (the loser's deletes find nothing).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from airflow_platform.dagsync.aws import is_missing_queue
from airflow_platform.dagsync.fanout import (
    TAG_CREATED,
    TAG_HEARTBEAT,
    TAG_POD_UID,
    TAG_TOPIC,
    FanoutQueue,
    queue_name_of,
)

LOG = logging.getLogger("airflow_platform.dagsync.reaper")
MAX_INSPECTED = 1000  # queues looked at per pass
MAX_REAPED = 10  # queues removed per pass; the rest wait for the next pass


@dataclass
class ReapReport:
    inspected: int = 0
    queues: list[tuple[str, str]] = field(default_factory=list)  # (queue name, reason)
    subscriptions: list[str] = field(default_factory=list)  # subscriptions of vanished queues
    deferred: bool = False  # the bound was reached: more orphans may remain


def orphan_reason(
    tags: dict[str, str], topic_tag: str, own_pod_uid: str, orphan_after: float, now: float
) -> str | None:
    """Why a queue with our prefix is an orphan, or None to leave it alone."""
    if tags.get(TAG_TOPIC) != topic_tag:
        return None
    if own_pod_uid and tags.get(TAG_POD_UID) == own_pod_uid:
        return "replaced"  # an earlier container of this pod; one dagsync runs per pod
    for tag in (TAG_HEARTBEAT, TAG_CREATED):
        try:
            beat = float(tags[tag])
        except (KeyError, ValueError):
            continue
        return "stale" if now - beat > orphan_after else None
    return None


class Reaper:
    def __init__(self, fanout: FanoutQueue, orphan_after: float) -> None:
        self.fanout = fanout
        self.orphan_after = orphan_after

    def run_pass(self) -> ReapReport:
        report = ReapReport()
        own = self.fanout.current
        if own is None:
            return report  # our account and region are learnt from our own queue
        subscriptions = self._subscriptions_by_queue_arn()
        listed: set[str] = set()
        now = time.time()
        for url in self._queue_urls():
            name = queue_name_of(url)
            listed.add(name)
            if name == own.name:
                continue
            report.inspected += 1
            if len(report.queues) >= MAX_REAPED:
                report.deferred = True
                break
            try:
                tags = self.fanout.sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
            except ClientError as exc:
                if is_missing_queue(exc):
                    continue  # another sidecar got there first
                raise
            reason = orphan_reason(
                tags, self.fanout.topic_tag, self.fanout.pod_uid, self.orphan_after, now
            )
            if reason is None:
                continue
            arns = subscriptions.pop(self.fanout.queue_arn(name), [])
            for arn in arns:
                self.fanout.unsubscribe(arn)
            if self.fanout.delete_queue(url, name):
                report.queues.append((name, reason))
                self.fanout.metrics.event_reaped.labels("queue", reason).inc()
                LOG.info(
                    "reaped an orphan event queue",
                    extra={
                        "event": "fanout",
                        "action": "reap",
                        "queue": name,
                        "reason": reason,
                        "owner": tags.get("dagsync:owner", ""),
                        "heartbeat": tags.get(TAG_HEARTBEAT, ""),
                        "subscriptions": arns,
                    },
                )
        if not report.deferred:
            self._reap_queueless(subscriptions, listed, own.name, report)
        if report.queues or report.subscriptions or report.deferred:
            LOG.info(
                "orphan reaping pass",
                extra={
                    "event": "fanout",
                    "action": "reap_pass",
                    "inspected": report.inspected,
                    "queues_reaped": len(report.queues),
                    "subscriptions_reaped": len(report.subscriptions),
                    "deferred": report.deferred,
                },
            )
        return report

    def _reap_queueless(
        self, subscriptions: dict[str, list[str]], listed: set[str], own: str, report: ReapReport
    ) -> None:
        """Subscriptions whose queue no longer exists (its owner deleted the queue but died
        before unsubscribing). ListQueues lags behind a new queue, so ask for the queue by
        name before concluding it is gone."""
        for queue_arn, arns in subscriptions.items():
            name = queue_name_of(queue_arn)
            if name in listed or name == own:
                continue
            if len(report.subscriptions) >= MAX_REAPED:
                report.deferred = True
                return
            try:
                self.fanout.sqs.get_queue_url(QueueName=name)
                continue
            except ClientError as exc:
                if not is_missing_queue(exc):
                    raise
            for arn in arns:
                if self.fanout.unsubscribe(arn):
                    report.subscriptions.append(arn)
                    self.fanout.metrics.event_reaped.labels("subscription", "queue_gone").inc()
                    LOG.info(
                        "reaped a subscription whose queue is gone",
                        extra={
                            "event": "fanout",
                            "action": "reap",
                            "queue": name,
                            "subscription": arn,
                            "reason": "queue_gone",
                        },
                    )

    def _subscriptions_by_queue_arn(self) -> dict[str, list[str]]:
        """Our topic's SQS subscriptions to queues with our prefix in our account and region
        (a foreign endpoint of the same name is someone else's)."""
        found: dict[str, list[str]] = {}
        paginator = self.fanout.sns.get_paginator("list_subscriptions_by_topic")
        for page in paginator.paginate(TopicArn=self.fanout.topic_arn):
            for sub in page.get("Subscriptions", []):
                endpoint = str(sub.get("Endpoint", ""))
                if sub.get("Protocol") != "sqs" or not sub.get("SubscriptionArn", "").startswith(
                    "arn:"
                ):
                    continue  # "PendingConfirmation" has no ARN to unsubscribe
                name = queue_name_of(endpoint)
                if name.startswith(self.fanout.prefix) and endpoint == self.fanout.queue_arn(name):
                    found.setdefault(endpoint, []).append(sub["SubscriptionArn"])
        return found

    def _queue_urls(self) -> list[str]:
        urls: list[str] = []
        paginator = self.fanout.sqs.get_paginator("list_queues")
        pages = paginator.paginate(
            QueueNamePrefix=self.fanout.prefix, PaginationConfig={"PageSize": 1000}
        )
        for page in pages:
            urls.extend(page.get("QueueUrls", []))
            if len(urls) >= MAX_INSPECTED:
                return urls[:MAX_INSPECTED]
        return urls
