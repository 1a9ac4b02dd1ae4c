"""Worker autoscaling on the local platform: burst -> scale-up decision latency.

Brings the local platform up (1..3 workers, 3 tasks per worker, 12 s idle window: the e2e
values), then for each cycle triggers `example_burst` (12 tasks of 20 s) through the REST
API and measures, from the trigger call:
- the first scale-up decision of the autoscaler (its event time in autoscaler.json),
- the moment 3 worker processes run,
- the run's end, and the return to 1 worker after the idle window.

Usage: .venv/bin/python bench/scaling/local_platform.py [--cycles 3] [--keep]
Prints the median and spread (min-max) over the cycles; writes
bench/results/scaling-local.txt.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VALUES = REPO / "tests" / "e2e" / "data" / "values-e2e.yaml"
sys.path.insert(0, str(REPO / "bench"))

from _runner import Report, interleave  # noqa: E402

from airflow_platform.local.platform import LocalPlatform  # noqa: E402
from airflow_platform.procs import wait_until  # noqa: E402


def active(lp: LocalPlatform) -> int:
    return sum(1 for w in lp.workers().values() if w["alive"] and not w["draining"])


def settled(lp: LocalPlatform) -> bool:
    events = lp.scaling_decisions().get("events", [])
    last_drain = max((e["at"] for e in events if e["action"] == "drained"), default=0.0)
    return len(lp.workers()) == 1 and active(lp) == 1 and time.time() - last_drain > 15


def cycle(lp: LocalPlatform, dag_id: str) -> dict[str, float]:
    api = lp.api()
    wait_until(lambda: settled(lp), 300, "one worker before the burst", 1.0)
    run_id = f"bench_{uuid.uuid4().hex[:8]}"
    began = time.time()
    api.trigger(dag_id, run_id)
    event = wait_until(
        lambda: next(
            (
                e
                for e in lp.scaling_decisions().get("events", [])
                if e["action"] == "scale_up" and e["at"] > began
            ),
            None,
        ),
        300,
        "the first scale-up decision",
        0.1,
    )
    wait_until(lambda: active(lp) == 3, 300, "3 workers", 0.2)
    three = time.time()
    wait_until(
        lambda: api.run(dag_id, run_id)["state"] in ("success", "failed"), 900, "the run", 1.0
    )
    done = time.time()
    failed = [t["task_id"] for t in api.task_instances(dag_id, run_id) if t["state"] != "success"]
    wait_until(lambda: settled(lp), 300, "back to 1 worker", 0.5)
    return {
        "decision_s": event["at"] - began,  # type: ignore[index]
        "three_workers_s": three - began,
        "run_s": done - began,
        "back_to_one_after_run_s": time.time() - done,
        "failed_tasks": float(len(failed)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="leave the platform running")
    args = parser.parse_args()
    report = Report("scaling-local")
    root = Path(tempfile.mkdtemp(prefix="airflow-platform-bench-scaling-"))
    root.chmod(0o755)  # PostgreSQL runs as nobody when we are root
    lp = LocalPlatform(root / "state", values_files=[VALUES], progress=lambda m: print(f"  {m}"))
    try:
        print("starting the local platform ...", flush=True)
        lp.up(timeout=600)
        dag_id = "example_burst"
        api = lp.api()
        wait_until(lambda: api.dag(dag_id), 300, f"DAG {dag_id}", 0.5)
        api.unpause(dag_id)
        runs = interleave({"burst": lambda: cycle(lp, dag_id)}, args.cycles, report.say)["burst"]
        report.say("burst of 12 x 20 s tasks, 1..3 workers, 3 tasks per worker:")
        for key, values in runs.items():
            report.figure(f"scaling_local.{key}", key, values)
        report.write()
    finally:
        if not args.keep:
            lp.down(wipe=True)
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
