"""Restart Airflow components that die, as a kubelet restarts a crashed container, and
scale the Celery workers (autoscaler.py), as KEDA and the ReplicaSet do in a cluster.

`local up` starts one watchdog per state directory. It restarts only processes that
still have a record (a deliberate `down` or stop removes the record first) and that
were launched as restartable (Airflow components and dagsync, not the embedded
services), with exponential back-off like CrashLoopBackOff, and never a worker that is
draining. The autoscaler runs once per round, outside the state lock while it queries.

Run as: python -m airflow_platform.local.watchdog <state-dir>
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from airflow_platform.local import queues
from airflow_platform.local.autoscaler import Autoscaler
from airflow_platform.local.state import StateDir
from airflow_platform.local.supervisor import Supervisor

MAX_BACKOFF = 60.0
HEALTHY_AFTER = 60.0  # alive this long: the back-off starts over


def log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {message}", flush=True)


def watch(state_dir: Path, interval: float = 1.0) -> None:
    state = StateDir.at(state_dir)
    sup = Supervisor(state)
    restarts: dict[str, int] = {}
    not_before: dict[str, float] = {}
    started_at: dict[str, float] = {}
    autoscaler = Autoscaler(state, sup, log)
    queue_autoscalers: dict[str, Autoscaler] = {}  # workers.queues: one per queue
    log(f"watching {state.root} (pid {os.getpid()})")
    while True:
        if state.load().get("processes", {}).get("watchdog", {}).get("pid") != os.getpid():
            log("no longer the recorded watchdog: exiting")
            return
        for scaler in [autoscaler, *queues.autoscalers(state, sup, log, queue_autoscalers)]:
            try:
                scaler.tick()
            except Exception as exc:  # a bad round must not stop the restarts
                which = f"[{scaler.queue}]" if scaler.queue else ""
                log(f"autoscaler{which}: round failed: {exc!r}")
        with state.locked():
            data = state.load()
            mine = data.get("processes", {}).get("watchdog", {}).get("pid")
            if mine != os.getpid():
                log("no longer the recorded watchdog: exiting")
                return
            now = time.monotonic()
            for name, launch in data.get("launch", {}).items():
                if not launch.get("restart") or name not in data.get("processes", {}):
                    continue
                if name in data.get("draining", {}):
                    continue  # stopping on purpose; the autoscaler forgets it once gone
                if sup.alive(name):
                    if now - started_at.get(name, now) > HEALTHY_AFTER:
                        restarts.pop(name, None)
                    sup.start_companions(launch.get("companions", []))  # e.g. its log server
                    continue
                if now < not_before.get(name, 0.0):
                    continue
                count = restarts.get(name, 0) + 1
                restarts[name] = count
                not_before[name] = now + min(MAX_BACKOFF, 2.0 ** (count - 1))
                started_at[name] = now
                log(f"{name} is not running: restart #{count} (log {state.log(name)})")
                sup.start(
                    name,
                    launch["argv"],
                    env=launch["env"],
                    cwd=Path(launch["cwd"]),
                    ports={k: int(v) for k, v in launch.get("ports", {}).items()},
                )
                sup.start_companions(launch.get("companions", []))
        time.sleep(interval)


if __name__ == "__main__":
    watch(Path(sys.argv[1]))
