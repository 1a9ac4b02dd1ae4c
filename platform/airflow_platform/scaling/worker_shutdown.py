"""Loaded into every Celery worker: a warm shutdown leaves no SQS receive open behind it.

A worker consumes with long polls (ReceiveMessage with WaitTimeSeconds, kombu's
`wait_time_seconds`, 10 s by default). Cancelling the consumer does not end a poll already
open: SQS keeps it until the wait ends and delivers to it whatever arrives meanwhile. If the
process exits first, a message sent in that window goes to a connection nobody reads and
stays invisible for the queue's visibility timeout (12 h) while its task sits in `queued`.

`StopReceivingOnShutdown` runs first when the consumer stops: it cancels the task consumer
itself, then keeps the event loop turning until the HTTP client has no request in flight.
A poll that returns messages after the cancel has no consumer left, and kombu makes them
visible again at once (ChangeMessageVisibility 0). Running tasks go on as before; the poll
ends within `wait_time_seconds`, so the wait costs at most that much of the grace period.

When the consumer shuts down (after running tasks finished and acked), messages it still
holds unacked were received but never run: `shutdown` makes them visible at once instead of
kombu's restore, which hides them for another `wait_time_seconds`.

The platform's `[celery] extra_celery_config` lists this module in Celery's `imports`, which
a worker imports before it builds its consumer.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import bootsteps, signals

logger = logging.getLogger(__name__)

KOMBU_DEFAULT_WAIT_TIME_SECONDS = 10
# Beyond the poll's own wait: the response's trip back and a loaded machine.
POLL_RETURN_MARGIN_SECONDS = 5.0


def receives_in_flight(http_client: Any) -> int | None:
    """Requests kombu's curl client has queued or started and not finished (None: unknown)."""
    if http_client is None:
        return 0
    curls, free, pending = (
        getattr(http_client, name, None) for name in ("_curls", "_free_list", "_pending")
    )
    if curls is None or free is None or pending is None:
        return None
    return len(pending) + len(curls) - len(free)


def _release_unacked(consumer: Any) -> int:
    """Make messages received but not run visible again now; returns how many."""
    channel = getattr(consumer.task_consumer, "channel", None)
    qos = getattr(channel, "qos", None)
    delivered = getattr(qos, "_delivered", None)
    if not delivered or not hasattr(channel, "sqs"):
        return 0
    acked = getattr(qos, "_dirty", None) or set()  # acked (deleted), not yet forgotten
    released = 0
    for tag, message in list(delivered.items()):
        if tag in acked:
            continue
        info = message.delivery_info
        sqs_message, queue_url = info.get("sqs_message"), info.get("sqs_queue")
        if not sqs_message or not queue_url:
            continue
        routing_key = info.get("routing_key")
        queue = channel.canonical_queue_name(routing_key) if routing_key else None
        try:
            channel.sqs(queue=queue).change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=sqs_message["ReceiptHandle"], VisibilityTimeout=0
            )
        except Exception as exc:  # kombu restores it at close, only later
            logger.warning("could not release message %s at shutdown: %r", tag, exc)
            continue
        # Forgotten, so kombu's restore at close does not hide it again.
        delivered.pop(tag, None)
        released += 1
    return released


class StopReceivingOnShutdown(bootsteps.StartStopStep):
    """Consumer step: on stop, cancel consuming and let the open SQS poll come back."""

    name = "airflow_platform.stop-receiving-on-shutdown"
    # Started after the task consumer exists, so stopped before Celery's own cancel.
    requires = ("celery.worker.consumer.tasks:Tasks",)

    def start(self, c: Any) -> None:
        pass  # only the stop matters; a cold shutdown (terminate) skips it on purpose

    def stop(self, c: Any) -> None:
        hub = getattr(c, "hub", None)
        if c.task_consumer is None or hub is None:
            return  # no event loop: receives are synchronous and already over
        c.task_consumer.cancel()  # Celery's Tasks step cancels again: a no-op then
        options = c.app.conf.broker_transport_options or {}
        wait = float(options.get("wait_time_seconds", KOMBU_DEFAULT_WAIT_TIME_SECONDS))
        deadline = time.monotonic() + wait + POLL_RETURN_MARGIN_SECONDS
        http_client = getattr(hub, "_current_http_client", None)  # kombu's per-loop client
        pending = receives_in_flight(http_client)
        if pending is None:
            logger.warning(
                "unknown HTTP client %s: waiting out the poll's full wait",
                type(http_client).__name__,
            )
        elif pending:
            logger.info("consumer cancelled; waiting for %d SQS receive(s) in flight", pending)
        loop = hub.create_loop()
        while pending != 0 and time.monotonic() < deadline:
            try:
                next(loop)
            except StopIteration:
                loop = hub.create_loop()
            pending = receives_in_flight(http_client)
        if pending is None:
            logger.info("waited %.0f s for any open SQS receive", wait + POLL_RETURN_MARGIN_SECONDS)
        elif pending:
            logger.warning(
                "%d SQS receive(s) still open after %.0f s; what they get comes back after "
                "the visibility timeout",
                pending,
                wait + POLL_RETURN_MARGIN_SECONDS,
            )
        else:
            logger.info("no SQS receive in flight; consumer stopped")

    def shutdown(self, c: Any) -> None:
        if c.task_consumer is None:
            return
        released = _release_unacked(c)
        if released:
            logger.info("made %d received but unstarted message(s) visible again", released)


@signals.worker_init.connect
def _add_consumer_step(sender: Any = None, **_: Any) -> None:
    # worker_init comes before the worker builds its consumer from app.steps.
    sender.app.steps["consumer"].add(StopReceivingOnShutdown)
