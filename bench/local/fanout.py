"""One run of the 200-task fan-out on a running local platform, and where its time goes.

Figures of a run (seconds unless named):
  wall           trigger -> the last task's end
  first_task     trigger -> the first task's start
  first_queued   trigger -> the first task queued (the scheduler's part of first_task)
  queued_to_start  median over tasks, queued -> running (broker, worker pick-up, the
                 task process's start; includes waiting for a free slot)
  run            median over tasks, running -> end (the task's own process and API calls)
  cpu_busy       share of the machine's CPU time busy during the run (0..1)
  cpu_<group>    CPU seconds the platform's processes of a group used during the run
                 (a process with its descendants, those that ended included)
"""

from __future__ import annotations

import statistics
import time
import uuid
from datetime import datetime

import psutil

from airflow_platform.local.api import AirflowApi
from airflow_platform.local.platform import LocalPlatform
from airflow_platform.procs import wait_until

FANOUT = "example_fanout_200"
GROUPS = ("worker", "scheduler", "dag-processor", "api-server", "execution-api", "moto",
          "postgres")  # fmt: skip


def ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _busy() -> tuple[float, float]:
    """(busy, total) CPU jiffies of the machine since boot."""
    with open("/proc/stat") as stat:
        fields = [float(x) for x in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def _tree_cpu(proc: psutil.Process) -> float:
    """CPU seconds of a process and its descendants, ended ones included (reaped children
    are counted in their parent's children_* times)."""
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            continue
    return total


def cpu_by_group(lp: LocalPlatform) -> dict[str, float]:
    out = dict.fromkeys(GROUPS, 0.0)
    for name, record in lp.sup.records().items():
        group = next((g for g in GROUPS if name.startswith(g)), None)
        if group is None:
            continue
        try:
            out[group] += _tree_cpu(psutil.Process(record.pid))
        except psutil.Error:
            continue
    return out


def run_fanout(lp: LocalPlatform, api: AirflowApi) -> dict[str, float]:
    wait_until(lambda: api.dag(FANOUT), 300, f"{FANOUT} in the API", interval=0.5)
    api.unpause(FANOUT)
    run_id = f"bench_{uuid.uuid4().hex[:8]}"
    cpu_before, busy_before = cpu_by_group(lp), _busy()
    triggered = time.time()
    api.trigger(FANOUT, run_id)

    def done() -> bool:
        return api.run(FANOUT, run_id)["state"] in ("success", "failed")

    wait_until(done, 1800, f"{FANOUT} run", interval=0.5)
    busy_after, cpu_after = _busy(), cpu_by_group(lp)
    run = api.run(FANOUT, run_id)
    tis = api.task_instances(FANOUT, run_id)
    if run["state"] != "success":
        bad = [t["task_id"] for t in tis if t["state"] != "success"]
        raise SystemExit(f"{FANOUT} run {run_id} ended {run['state']}: {bad[:10]}")
    starts = [ts(t["start_date"]) for t in tis]
    queued = [ts(t["queued_when"]) for t in tis if t.get("queued_when")]
    figures = {
        "wall": max(ts(t["end_date"]) for t in tis) - triggered,
        "first_task": min(starts) - triggered,
        "first_queued": (min(queued) - triggered) if queued else float("nan"),
        "queued_to_start": statistics.median(
            ts(t["start_date"]) - ts(t["queued_when"]) for t in tis if t.get("queued_when")
        ),
        "run": statistics.median(ts(t["end_date"]) - ts(t["start_date"]) for t in tis),
        "cpu_busy": (busy_after[0] - busy_before[0]) / max(1.0, busy_after[1] - busy_before[1]),
    }
    for group in GROUPS:
        figures[f"cpu_{group}"] = cpu_after[group] - cpu_before[group]
    return figures
