"""Worker autoscaling of the local platform: the chart's scaling policy over real Celery
workers on SQS, with a drain-safe scale-in and a worker lost mid-task.

The session's values (data/values-e2e.yaml): 1..3 workers, 3 tasks per worker, a 12 s
idle window, a 45 s task heartbeat timeout.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from airflow_platform.local.platform import LocalPlatform
from airflow_platform.procs import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MAX_WORKERS = 3
TASKS_PER_WORKER = 3


def active_workers(platform: LocalPlatform) -> dict[str, dict]:
    return {n: w for n, w in platform.workers().items() if w["alive"] and not w["draining"]}


def settled_at(platform: LocalPlatform, count: int) -> bool:
    """Exactly `count` workers, none draining."""
    workers = platform.workers()
    return len(workers) == count and len(active_workers(platform)) == count


def execution_records(s3_client, bucket: dict, dag_id: str, run_id: str) -> dict[str, list]:
    """Every execution's record, by task id (each execution writes one before it sleeps)."""
    out: dict[str, list] = {}
    paginator = s3_client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket["name"], Prefix=f"results/{dag_id}/{run_id}/"):
        for obj in page.get("Contents", []):
            task_id = obj["Key"].split("/")[3]
            body = s3_client.get_object(Bucket=bucket["name"], Key=obj["Key"])["Body"].read()
            out.setdefault(task_id, []).append(json.loads(body))
    return out


def test_burst_scales_out_then_drains_back_without_failures_or_repeats(
    platform: LocalPlatform, api, helpers, bucket, s3_client
) -> None:
    """12 tasks held running until the test releases them (example_burst with conf hold):
    the demand stays at 12 while the workers scale out, a busy worker is drained while its
    tasks are known to run, and nothing depends on how long a task takes."""
    wait_until(lambda: settled_at(platform, 1), 240, "one worker before the burst", 1.0)
    dag_id = "example_burst"
    wait_until(lambda: api.dag(dag_id), 180, f"DAG {dag_id} in the API", 0.5)
    api.unpause(dag_id)
    run_id = helpers.unique("e2e")
    body = {"logical_date": None, "dag_run_id": run_id, "conf": {"hold": True}}
    api.call("POST", f"/api/v2/dags/{dag_id}/dagRuns", body, ok=(200,))

    wait_until(
        lambda: len(active_workers(platform)) == MAX_WORKERS,
        300,
        "the autoscaler to run 3 workers for 12 held tasks",
        0.5,
    )
    events = platform.scaling_decisions()["events"]
    assert any(e["action"] == "scale_up" and e["desired"] == MAX_WORKERS for e in events), (
        helpers.dump(events)
    )
    rows = {row["name"]: row for row in platform.status()}
    assert "-> 3" in rows["autoscaler"]["detail"], helpers.dump(rows)
    assert {n for n in rows if n.startswith("worker-")} >= set(active_workers(platform))

    # Every slot busy: 3 workers x 3 tasks per worker run, the other 3 tasks wait.
    def every_slot_busy() -> list | None:
        tis = api.task_instances(dag_id, run_id)
        running = [t for t in tis if t["state"] == "running"]
        return tis if len(running) == MAX_WORKERS * TASKS_PER_WORKER else None

    tis = wait_until(every_slot_busy, 600, "9 tasks running", 0.5)
    by_host = Counter(t["hostname"] for t in tis if t["state"] == "running")
    assert sorted(by_host.values()) == [TASKS_PER_WORKER] * MAX_WORKERS, helpers.dump(tis)

    # Scale in a busy worker, as the autoscaler does: SIGTERM to its Celery main process.
    # Its tasks are held, so they are running when it gets the signal.
    victim, host = next((n, w["hostname"]) for n, w in sorted(active_workers(platform).items()))
    busy_tasks = sorted(
        t["task_id"] for t in tis if t["state"] == "running" and t["hostname"] == host
    )
    assert len(busy_tasks) == TASKS_PER_WORKER, helpers.dump(tis)
    platform.drain_worker(victim, reason="e2e: scale-in of a busy worker")
    wait_until(lambda: platform.workers()[victim]["draining"], 60, f"{victim} draining", 0.5)
    assert platform.workers()[victim]["alive"], f"{victim} exited with tasks running"

    s3_client.put_object(Bucket=bucket["name"], Key=f"gates/{dag_id}/{run_id}/release", Body=b"")
    wait_until(lambda: victim not in platform.workers(), 300, f"{victim} to drain and exit", 0.5)
    run = wait_until(
        lambda: (r := api.run(dag_id, run_id))["state"] in ("success", "failed") and r,
        600,
        f"{dag_id} run {run_id} to finish",
        1.0,
    )
    tis = api.task_instances(dag_id, run_id)
    assert run["state"] == "success", helpers.dump(tis)
    assert len(tis) == 12
    assert [t["task_id"] for t in tis if t["state"] != "success"] == [], helpers.dump(tis)
    assert [t["task_id"] for t in tis if t["try_number"] != 1] == [], helpers.dump(tis)
    # The drained worker finished what it ran (try 1 everywhere: nothing was redelivered).
    assert {t["hostname"] for t in tis if t["task_id"] in busy_tasks} == {host}
    records = execution_records(s3_client, bucket, dag_id, run_id)
    assert {k: [r["try_number"] for r in v] for k, v in records.items()} == {
        t["task_id"]: [1] for t in tis
    }, helpers.dump(records)

    wait_until(lambda: settled_at(platform, 1), 300, "back to 1 worker after the idle window", 1.0)
    actions = [e["action"] for e in platform.scaling_decisions()["events"]]
    assert "scale_in" in actions and "drained" in actions, actions


def test_sigkilled_worker_task_is_retried_and_nothing_is_lost(
    platform: LocalPlatform, api, runs, helpers, bucket, s3_client
) -> None:
    dag_id = "example_worker_loss"
    run_id = runs.start(dag_id)

    def running_with_record() -> list | None:
        running = [
            t
            for t in api.task_instances(dag_id, run_id)
            if t["state"] == "running" and t["hostname"]
        ]
        records = execution_records(s3_client, bucket, dag_id, run_id)
        return running if running and all(t["task_id"] in records for t in running) else None

    running = wait_until(running_with_record, 300, "a task running on a worker", 0.5)
    host = running[0]["hostname"]
    victim = next(n for n, w in platform.workers().items() if w["hostname"] == host)
    lost = {t["task_id"] for t in running if t["hostname"] == host}
    # Like a container that dies: SIGKILL to the worker and every process it started.
    old_pid = platform.kill(victim)

    run = runs.finish(dag_id, run_id, timeout=900)
    tis = api.task_instances(dag_id, run_id)
    assert run["state"] == "success", helpers.dump(tis)
    assert [t["task_id"] for t in tis if t["state"] != "success"] == [], helpers.dump(tis)
    tries = {t["task_id"]: t["try_number"] for t in tis}
    retried = {task for task, n in tries.items() if n > 1}
    assert lost <= retried, helpers.dump(tis)
    assert all(tries[task] == 2 for task in retried), helpers.dump(tis)
    # One execution per try: the lost try (on the killed worker) and the retry.
    records = execution_records(s3_client, bucket, dag_id, run_id)
    assert {k: sorted(r["try_number"] for r in v) for k, v in records.items()} == {
        task: list(range(1, n + 1)) for task, n in tries.items()
    }, helpers.dump(records)
    for task in retried:
        first = next(r for r in records[task] if r["try_number"] == 1)
        assert first["hostname"] == host, helpers.dump(records[task])
    # The watchdog replaced the killed process (a kubelet restarting the container).
    worker = platform.workers().get(victim)
    assert worker is None or worker["pid"] != old_pid
