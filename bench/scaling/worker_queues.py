"""Worker queues on the local platform: a burst on the `batch` queue, per queue.

Brings the local platform up with the e2e values (default queue 1..3 workers; `batch`, from
values-local.yaml, 0..2 workers at 2 tasks each; 12 s idle window), then for each cycle
triggers `example_queue_burst` (6 tasks of 20 s on `batch`) and measures, from the trigger:
- the batch autoscaler's first scale-up decision and the moment 2 batch workers run,
- the run's end, and the return of `batch` to 0 workers after it,
- the default queue's peak worker count meanwhile, and where the tasks ran.

Usage: .venv/bin/python bench/scaling/worker_queues.py [--cycles 3] [--keep]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VALUES = REPO / "tests" / "e2e" / "data" / "values-e2e.yaml"
QUEUE = "batch"
DAG = "example_queue_burst"

from airflow_platform.local import queues  # noqa: E402
from airflow_platform.local.autoscaler import read_decisions  # noqa: E402
from airflow_platform.local.platform import LocalPlatform  # noqa: E402
from airflow_platform.procs import wait_until  # noqa: E402


def batch(lp: LocalPlatform, active_only: bool = True) -> int:
    found = queues.workers(lp.state, lp.sup).values()
    return sum(1 for w in found if not active_only or (w["alive"] and not w["draining"]))


def default(lp: LocalPlatform) -> int:
    return sum(1 for w in lp.workers().values() if w["alive"] and not w["draining"])


def settled(lp: LocalPlatform) -> bool:
    return batch(lp, active_only=False) == 0 and len(lp.workers()) == default(lp) == 1


def cycle(lp: LocalPlatform) -> dict[str, float]:
    api = lp.api()
    wait_until(lambda: settled(lp), 300, "each queue at its minimum", 1.0)
    run_id = f"bench_{uuid.uuid4().hex[:8]}"
    began = time.time()
    api.trigger(DAG, run_id)
    peak = [default(lp)]

    def watch(condition):
        def check() -> bool:
            peak[0] = max(peak[0], len(lp.workers()))
            return condition()

        return check

    def first_scale_up() -> dict | None:
        events = read_decisions(lp.state, QUEUE).get("events", [])
        return next((e for e in events if e["action"] == "scale_up" and e["at"] > began), None)

    event = wait_until(watch(first_scale_up), 300, "the batch queue's scale-up", 0.1)
    wait_until(watch(lambda: batch(lp) == 2), 300, "2 batch workers", 0.2)
    two = time.time()
    wait_until(
        watch(lambda: api.run(DAG, run_id)["state"] in ("success", "failed")), 900, "the run", 1.0
    )
    done = time.time()
    tis = api.task_instances(DAG, run_id)
    wait_until(watch(lambda: batch(lp, active_only=False) == 0), 300, "batch back to 0", 0.5)
    hosts = Counter(t["hostname"] for t in tis)
    return {
        "decision_s": event["at"] - began,  # type: ignore[index]
        "two_batch_workers_s": two - began,
        "run_s": done - began,
        "batch_back_to_0_after_run_s": time.time() - done,
        "default_peak_workers": float(peak[0]),
        "batch_tasks_succeeded": float(sum(t["state"] == "success" for t in tis)),
        "batch_tasks_retried": float(sum(t["try_number"] != 1 for t in tis)),
        "batch_hosts": float(len(hosts)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="leave the platform running")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="airflow-platform-bench-queues-"))
    root.chmod(0o755)  # PostgreSQL runs as nobody when we are root
    lp = LocalPlatform(root / "state", values_files=[VALUES], progress=lambda m: print(f"  {m}"))
    try:
        print("starting the local platform ...", flush=True)
        lp.up(timeout=900)
        api = lp.api()
        wait_until(lambda: api.dag(DAG), 300, f"DAG {DAG}", 0.5)
        api.unpause(DAG)
        results = []
        for n in range(args.cycles):
            r = cycle(lp)
            results.append(r)
            print(f"cycle {n + 1}: " + ", ".join(f"{k}={v:.2f}" for k, v in r.items()), flush=True)
        print(f"\nburst of 6 x 20 s tasks on {QUEUE!r} (0..2 workers, 2 tasks each):")
        for key in results[0]:
            values = [r[key] for r in results]
            print(
                f"  {key:30s} median {statistics.median(values):7.2f}  "
                f"min {min(values):7.2f}  max {max(values):7.2f}"
            )
    finally:
        if not args.keep:
            lp.down(wipe=True)
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
