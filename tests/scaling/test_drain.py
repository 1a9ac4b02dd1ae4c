"""Drain-safe scale-in with real Celery workers on a real (moto) SQS queue, no remote control."""

from __future__ import annotations

import pytest
from celery_harness import Executions, open_gates, queue_counts, send

from airflow_platform.procs import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_airflow_turns_the_platform_env_into_drain_safe_celery_settings(drill_config):
    assert drill_config["task_acks_late"] is True
    assert drill_config["worker_prefetch_multiplier"] == 1
    assert drill_config["worker_enable_remote_control"] is False
    assert drill_config["worker_concurrency"] == 3
    assert drill_config["worker_soft_shutdown_timeout"] == 0
    assert drill_config["imports"] == ["airflow_platform.scaling.worker_shutdown"]
    options = drill_config["broker_transport_options"]
    assert options["visibility_timeout"] == 43200
    assert options["is_secure"] is False  # a real bool, or kombu would speak https
    assert set(options["predefined_queues"]) == {"default"}


def test_sigterm_stops_taking_messages_finishes_running_tasks_then_exits(make_drill, sqs):
    drill = make_drill(visibility_timeout=600)
    producer = drill.producer()
    worker = drill.worker("a", concurrency=3)

    running = ["run-1", "run-2"]
    send(producer, running, max_seconds=300)
    wait_until(
        lambda: Executions.read(drill.log).starts.keys() >= set(running), 120, "2 tasks started"
    )

    # A scale-in picks this pod: SIGTERM to the container's main process only.
    worker.terminate_main()
    wait_until(lambda: "Warm shutdown" in worker.log_text(), 60, "warm shutdown to begin")

    # Work sent during the drain: the worker has a free slot but must not run it.
    late = ["late-1", "late-2", "late-3"]
    send(producer, late, max_seconds=300)
    wait_until(lambda: sum(queue_counts(sqs, drill.queue_url)) >= 5, 60, "late messages sent")
    assert worker.process.alive(), "the worker exited with tasks still running"

    open_gates(drill.gates, running)
    assert worker.wait_exit(timeout=120) == 0, worker.describe()

    seen = Executions.read(drill.log)
    assert {k: seen.dones[k] for k in running} == {"run-1": 1, "run-2": 1}, worker.describe()
    assert not any(seen.starts[k] for k in late), "the draining worker ran new work"
    # A message received around the SIGTERM but never started is visible again by the time
    # the worker has exited, not after a delay: nothing is left in flight.
    assert queue_counts(sqs, drill.queue_url) == (3, 0), worker.describe()

    successor = drill.worker("b", concurrency=3)
    open_gates(drill.gates, late)
    wait_until(
        lambda: all(Executions.read(drill.log).dones[k] for k in late), 120, "late tasks done"
    )
    seen = Executions.read(drill.log)
    every = running + late
    assert [seen.starts[k] for k in every] == [1] * 5, "a task ran twice"
    assert [seen.dones[k] for k in every] == [1] * 5
    assert all(seen.done_workers[k] == ["b"] for k in late), successor.describe()
    wait_until(lambda: queue_counts(sqs, drill.queue_url) == (0, 0), 60, "queue empty")


def test_killed_worker_s_task_comes_back_after_visibility_timeout_and_succeeds(make_drill, sqs):
    # The queue's VisibilityTimeout (5 s here) governs, not the transport option (43200 s).
    drill = make_drill(visibility_timeout=5)
    producer = drill.producer()
    doomed = drill.worker("doomed", concurrency=1)

    send(producer, ["long"], max_seconds=600)
    wait_until(lambda: Executions.read(drill.log).starts["long"] == 1, 120, "task started")
    doomed.kill()
    doomed.wait_exit(timeout=30)
    assert Executions.read(drill.log).dones["long"] == 0

    rescuer = drill.worker("rescuer", concurrency=1)
    wait_until(lambda: Executions.read(drill.log).starts["long"] == 2, 120, "task redelivered")
    open_gates(drill.gates, ["long"])
    wait_until(lambda: Executions.read(drill.log).dones["long"] == 1, 60, "task done")
    seen = Executions.read(drill.log)
    assert seen.start_workers["long"] == ["doomed", "rescuer"], rescuer.describe()
    assert seen.done_workers["long"] == ["rescuer"]
    # Acked after success: nothing left to come back.
    wait_until(lambda: queue_counts(sqs, drill.queue_url) == (0, 0), 60, "message deleted")


def test_prefetch_one_leaves_waiting_work_to_idle_workers(make_drill, sqs):
    # A busy worker holds only what it runs; the rest stays in SQS for others. All three
    # messages wait before the busy worker's first receive, so a worker that prefetched more
    # than it runs would take a second one then, and that task could not start on the idle
    # worker while the busy one's task is held at its gate.
    drill = make_drill(visibility_timeout=600)
    producer = drill.producer()
    keys = {"one", "two", "three"}
    send(producer, sorted(keys), max_seconds=300)
    busy = drill.worker("busy", concurrency=1)
    started = wait_until(
        lambda: set(Executions.read(drill.log).starts), 120, "the busy worker to start a task"
    )
    (held,) = started
    rest = keys - {held}

    drill.worker("idle", concurrency=2)
    wait_until(
        lambda: rest <= Executions.read(drill.log).starts.keys(),
        120,
        "the waiting work picked up by the idle worker while the busy worker's task runs",
    )
    seen = Executions.read(drill.log)
    assert seen.start_workers == {held: ["busy"], **{key: ["idle"] for key in rest}}
    open_gates(drill.gates, sorted(keys))
    wait_until(lambda: sum(Executions.read(drill.log).dones.values()) == 3, 60, "all done")
    assert busy.process.alive()
