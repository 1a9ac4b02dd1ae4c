"""A stopped worker leaves no SQS long poll behind to swallow the next messages.

kombu consumes with ReceiveMessage long polls (WaitTimeSeconds 10). A poll still open
when the worker process exits takes whatever is sent in the rest of its wait, and SQS then
hides that message for the queue's visibility timeout (12 h here): its task would sit in
`queued`. The platform's worker module lets the open poll return before the exit and makes
what it got visible again at once.
"""

from __future__ import annotations

import pytest
from celery_harness import Executions, open_gates, queue_counts, send

from airflow_platform.procs import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _successor_runs(drill, sqs, keys: list[str], *workers) -> None:
    successor = drill.worker("successor", concurrency=len(keys))
    try:
        wait_until(
            lambda: all(Executions.read(drill.log).starts[k] for k in keys),
            120,  # far below the 43200 s a swallowed message would stay hidden
            f"the successor to run {keys}",
        )
    except TimeoutError as exc:
        visible, in_flight = queue_counts(sqs, drill.queue_url)
        logs = "\n".join(w.describe() for w in (*workers, successor))
        raise AssertionError(
            f"{exc}; queue: {visible} visible, {in_flight} in flight\n{logs}"
        ) from exc
    open_gates(drill.gates, keys)
    wait_until(lambda: queue_counts(sqs, drill.queue_url) == (0, 0), 60, "messages deleted")
    seen = Executions.read(drill.log)
    assert {k: seen.start_workers[k] for k in keys} == {k: ["successor"] for k in keys}
    assert {k: seen.dones[k] for k in keys} == {k: 1 for k in keys}


def test_message_sent_right_after_an_idle_worker_exits_goes_to_its_successor(make_drill, sqs):
    drill = make_drill(visibility_timeout=43200)
    leaving = drill.worker("leaving", concurrency=1)

    # Idle, so its long poll is open. A scale-in (or a restart) stops it.
    leaving.terminate_main()
    assert leaving.wait_exit(timeout=120) == 0, leaving.describe()

    # Sent right after the exit, within what would be the rest of an open poll's wait.
    send(drill.producer(), ["after-exit"], max_seconds=300)
    _successor_runs(drill, sqs, ["after-exit"], leaving)


def test_message_received_while_an_idle_worker_drains_is_visible_when_it_exits(make_drill, sqs):
    drill = make_drill(visibility_timeout=43200)
    leaving = drill.worker("leaving", concurrency=1)

    leaving.terminate_main()
    wait_until(lambda: "Warm shutdown" in leaving.log_text(), 60, "warm shutdown to begin")
    # The open poll receives it after the consumer is cancelled.
    send(drill.producer(), ["during-drain"], max_seconds=300)
    assert leaving.wait_exit(timeout=120) == 0, leaving.describe()
    # Handed back before the exit, not left hidden for the visibility timeout.
    assert queue_counts(sqs, drill.queue_url) == (1, 0), leaving.describe()
    assert not Executions.read(drill.log).starts, "the draining worker ran new work"
    _successor_runs(drill, sqs, ["during-drain"], leaving)
