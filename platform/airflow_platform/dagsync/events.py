"""S3 event notifications read from SQS by long poll: they wake the sync loop at once so a
change is published in about a second instead of at the next reconcile.

Accepted bodies: S3's own notification ({"Records": [...]}, keys URL-encoded), the same
wrapped by SNS ({"Type": "Notification", "Message": "..."}), and S3's test event. A
message is deleted only after a sync that started after it arrived succeeded; messages
that are malformed, tests, or about other buckets/keys are deleted at once.

The queue is either one given queue (--event-queue-url: each message wakes ONE consumer) or
this process's own queue on the SNS topic (--event-topic-arn, fanout.py). For the latter the
listener re-creates the queue when it vanishes and asks for a full reconcile, since events
may have been missed meanwhile.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from airflow_platform.dagsync.aws import error_kind, is_missing_queue

LOG = logging.getLogger("airflow_platform.dagsync.events")
WAIT_SECONDS = 20  # SQS's maximum long poll
MAX_PER_RECEIVE = 10


class MalformedEvent(ValueError):
    pass


def parse_body(body: str) -> list[tuple[str, str]] | None:
    """(bucket, key) pairs named by a message; None for S3's test event."""
    try:
        data = json.loads(body)
    except ValueError:
        raise MalformedEvent("body is not JSON") from None
    if not isinstance(data, dict):
        raise MalformedEvent("body is not a JSON object")
    if data.get("Type") == "Notification" and isinstance(data.get("Message"), str):
        return parse_body(data["Message"])
    if data.get("Event") == "s3:TestEvent":
        return None
    records = data.get("Records")
    if not isinstance(records, list):
        raise MalformedEvent("no Records list")
    found = []
    for record in records:
        try:
            s3 = record["s3"]
            found.append((str(s3["bucket"]["name"]), unquote_plus(str(s3["object"]["key"]))))
        except (KeyError, TypeError):
            raise MalformedEvent("a record lacks s3.bucket.name or s3.object.key") from None
    return found


@dataclass
class EventBatch:
    keys: set[str] = field(default_factory=set)
    receipts: list[str] = field(default_factory=list)
    full: bool = False  # events may have been lost: list the whole prefix

    def __bool__(self) -> bool:
        return bool(self.receipts) or self.full


class EventListener:
    def __init__(
        self,
        client: Any,
        queue_url: str,
        bucket: str,
        relevant: Callable[[str], bool],
        wake: Callable[[], None],
        stop: threading.Event,
        on_error: Callable[[str], None],
        recover: Callable[[], str] | None = None,
    ) -> None:
        """`recover` (fan-out mode) creates a fresh queue and returns its URL; it is called
        when queue_url is empty (setup failed at start) or the queue disappeared."""
        self.client = client
        self.queue_url = queue_url
        self.bucket = bucket
        self.relevant = relevant
        self.wake = wake
        self.stop = stop
        self.on_error = on_error
        self.recover = recover
        self._lock = threading.Lock()
        self._pending = EventBatch()
        self._thread = threading.Thread(target=self._run, name="dagsync-events", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def take(self) -> EventBatch:
        with self._lock:
            batch, self._pending = self._pending, EventBatch()
        return batch

    def give_back(self, batch: EventBatch) -> None:
        """A sync failed: keep its messages for the next attempt."""
        with self._lock:
            self._pending.keys |= batch.keys
            self._pending.receipts.extend(batch.receipts)
            self._pending.full = self._pending.full or batch.full

    def ack(self, batch: EventBatch) -> None:
        self._delete(batch.receipts)

    def _delete(self, receipts: list[str]) -> None:
        for start in range(0, len(receipts), 10):
            chunk = receipts[start : start + 10]
            try:
                self.client.delete_message_batch(
                    QueueUrl=self.queue_url,
                    Entries=[{"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(chunk)],
                )
            except Exception as exc:  # redelivery only costs one more (idempotent) sync
                LOG.warning("could not delete event messages", extra={"error": str(exc)})

    def _run(self) -> None:
        failures = 0
        while not self.stop.is_set():
            if not self.queue_url and self.recover is not None:
                if self._recover():
                    failures = 0
                else:
                    failures += 1
                    self.stop.wait(min(60.0, 2.0**failures))
                continue
            try:
                response = self.client.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=MAX_PER_RECEIVE,
                    WaitTimeSeconds=WAIT_SECONDS,
                )
                failures = 0
            except Exception as exc:
                if self.stop.is_set():
                    break  # the queue is being deleted on the way out
                if self.recover is not None and is_missing_queue(exc):
                    LOG.warning(
                        "own event queue disappeared; creating a new one",
                        extra={"queue": self.queue_url},
                    )
                    self.queue_url = ""
                    continue
                failures += 1
                self.on_error(f"events_{error_kind(exc)}")
                LOG.warning(
                    "event queue receive failed; the periodic reconcile continues",
                    extra={"queue": self.queue_url, "error": str(exc)},
                )
                self.stop.wait(min(60.0, 2.0**failures))
                continue
            self._handle(response.get("Messages", []))

    def _recover(self) -> bool:
        assert self.recover is not None
        try:
            url = self.recover()
        except Exception as exc:
            self.on_error("events_setup")
            LOG.warning(
                "cannot set up the event queue; the periodic reconcile continues",
                extra={"error": str(exc)},
            )
            return False
        self.queue_url = url
        with self._lock:
            self._pending.full = True  # whatever changed while we had no queue
        self.wake()
        return True

    def _handle(self, messages: list[dict[str, Any]]) -> None:
        discard: list[str] = []
        batch = EventBatch()
        for message in messages:
            receipt = message["ReceiptHandle"]
            try:
                pairs = parse_body(message.get("Body", ""))
            except MalformedEvent as exc:
                self.on_error("event_malformed")
                LOG.warning(
                    "ignoring a malformed event message",
                    extra={"message_id": message.get("MessageId"), "reason": str(exc)},
                )
                discard.append(receipt)
                continue
            keys = {k for b, k in pairs or [] if b == self.bucket and self.relevant(k)}
            if not keys:
                discard.append(receipt)  # a test event or not about what we mirror
                continue
            batch.keys |= keys
            batch.receipts.append(receipt)
        if discard:
            self._delete(discard)
        if batch:
            self.give_back(batch)
            self.wake()
