"""Worker queues on the local platform: the default queue and `batch` (workers.queues in
values-local.yaml: 0..2 workers, 2 tasks each; the e2e idle window of 12 s applies to both).

A task runs only on its own queue's workers; a burst on `batch` scales `batch` alone, which
then goes back to 0 workers; no task is lost or run twice. The figures (time to scale up,
to return to the minimum, tasks per queue) are printed for the record, never asserted.
"""

from __future__ import annotations

import time

import pytest

from airflow_platform.local import queues
from airflow_platform.local.autoscaler import read_decisions
from airflow_platform.local.platform import LocalPlatform
from airflow_platform.procs import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

QUEUE = "batch"


def queue_workers(platform: LocalPlatform) -> dict[str, dict]:
    """The batch queue's live, non-draining workers."""
    return {
        n: w
        for n, w in queues.workers(platform.state, platform.sup).items()
        if w["queue"] == QUEUE and w["alive"] and not w["draining"]
    }


def all_queue_workers(platform: LocalPlatform) -> dict[str, dict]:
    return {
        n: w for n, w in queues.workers(platform.state, platform.sup).items() if w["queue"] == QUEUE
    }


def default_workers(platform: LocalPlatform) -> dict[str, dict]:
    return {n: w for n, w in platform.workers().items() if w["alive"] and not w["draining"]}


def hostnames(platform: LocalPlatform) -> tuple[set[str], set[str]]:
    """Airflow hostnames each queue's workers may have (every name of each pool)."""
    data = platform.state.load()
    default = set(data["autoscaling"]["hostnames"].values())
    batch = set(data[queues.STATE_KEY][QUEUE]["hostnames"].values())
    assert default and batch and not default & batch
    return default, batch


def settled(platform: LocalPlatform) -> bool:
    """The minimum of each queue, nothing draining: 1 default worker, no batch worker."""
    return (
        len(all_queue_workers(platform)) == 0
        and len(platform.workers()) == len(default_workers(platform)) == 1
    )


def test_the_local_platform_runs_the_extra_queue_with_its_rendered_scaling(
    platform: LocalPlatform,
) -> None:
    record = platform.state.load()[queues.STATE_KEY][QUEUE]
    config = record["config"]
    assert (config["min_workers"], config["max_workers"], config["tasks_per_worker"]) == (0, 2, 2)
    assert config["source"].endswith("worker-batch")
    argv = record["launch"][record["pool"][0]]["argv"]
    assert argv[-2:] == ["--queues", QUEUE], argv


def test_each_task_runs_on_its_own_queues_workers(
    platform: LocalPlatform, api, runs, helpers
) -> None:
    wait_until(lambda: settled(platform), 300, "each queue at its minimum", 1.0)
    run_id = runs.start("example_queues")
    run = runs.finish("example_queues", run_id, timeout=600)
    tis = api.task_instances("example_queues", run_id)
    assert run["state"] == "success", helpers.dump(tis)
    default_hosts, batch_hosts = hostnames(platform)
    by_queue: dict[str, list[str]] = {}
    for ti in tis:
        expected = QUEUE if ti["task_id"].startswith("batch_") else "default"
        assert ti["queue"] == expected, helpers.dump(ti)
        assert ti["hostname"] in (batch_hosts if expected == QUEUE else default_hosts), (
            helpers.dump(ti)
        )
        by_queue.setdefault(expected, []).append(ti["task_id"])
    assert {q: len(t) for q, t in by_queue.items()} == {"default": 2, QUEUE: 2}
    print(f"\n[queues] example_queues: tasks per queue {by_queue}")


def test_a_burst_scales_only_its_queue_then_back_to_zero(
    platform: LocalPlatform, api, runs, helpers
) -> None:
    wait_until(lambda: settled(platform), 300, "each queue at its minimum", 1.0)
    default_before = set(default_workers(platform))
    began = time.time()
    run_id = runs.start("example_queue_burst")
    peak_default = [len(default_before)]

    def batch_scaled_out() -> bool:
        peak_default[0] = max(peak_default[0], len(platform.workers()))
        return len(queue_workers(platform)) == 2

    wait_until(batch_scaled_out, 300, "2 batch workers for 6 queued batch tasks", 0.5)
    scaled_up = time.time() - began

    run = runs.finish("example_queue_burst", run_id, timeout=600)
    finished = time.time()
    tis = api.task_instances("example_queue_burst", run_id)
    assert run["state"] == "success", helpers.dump(tis)
    assert len(tis) == 6
    assert [t["task_id"] for t in tis if t["state"] != "success"] == [], helpers.dump(tis)
    assert [t["task_id"] for t in tis if t["try_number"] != 1] == [], helpers.dump(tis)
    _, batch_hosts = hostnames(platform)
    assert {t["hostname"] for t in tis} <= batch_hosts, helpers.dump(tis)
    assert len({t["hostname"] for t in tis}) == 2, "the burst should spread over both workers"

    def back_to_zero() -> bool:
        peak_default[0] = max(peak_default[0], len(platform.workers()))
        return len(all_queue_workers(platform)) == 0

    wait_until(back_to_zero, 300, "the batch queue back to 0 workers", 1.0)
    to_min = time.time() - finished

    # The default queue's workers saw none of it.
    assert peak_default[0] == 1 and set(default_workers(platform)) == default_before
    default_events = [
        e for e in read_decisions(platform.state).get("events", []) if e["at"] >= began
    ]
    assert [e for e in default_events if e["action"] == "scale_up"] == [], helpers.dump(
        default_events
    )
    batch_events = [e for e in read_decisions(platform.state, QUEUE)["events"] if e["at"] >= began]
    actions = [e["action"] for e in batch_events]
    assert "scale_up" in actions and "scale_in" in actions and "drained" in actions, actions
    print(
        f"\n[queues] burst of 6 x 20 s on {QUEUE!r}: 0 -> 2 workers {scaled_up:.1f} s after the "
        f"trigger; back to 0 {to_min:.1f} s after the run finished (idle window 12 s); "
        f"run took {finished - began:.1f} s; default queue stayed at {peak_default[0]} worker"
    )
