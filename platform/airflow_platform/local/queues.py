"""Worker queues (the chart's workers.queues) on one machine.

Each extra queue renders a Deployment of its own (component `worker-<name>`, label
`airflow-platform.io/worker-queue`) with its ScaledObject. The local platform runs it as
the default queue's workers are run (autoscaler.py), from the same rendering:

- `values_file`: services.seed_aws creates one SQS queue in moto per entry of
  workers.queues; this hands their URLs to the chart (a list cannot be changed item by item
  with `--set-string`, so the whole list goes again in a values file of the state directory);
- `prepare`: per queue, the pool of worker processes (`worker-<name>-N`, each with an
  address of its own as Airflow hostname, and its log server bound there), the scaling read
  from the queue's ScaledObject, and a record under `queue_autoscaling.<name>` of the state,
  shaped like the default queue's `autoscaling` record; it returns the workers to run now
  (minWorkers of each queue);
- `autoscalers`: one `Autoscaler` per queue for the watchdog. A queue's demand is its own
  task instances (`queue = <name>`); the default queue's is every queue but these.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from airflow_platform.local.autoscaler import QUEUES_KEY, Autoscaler, worker_scaling
from airflow_platform.local.hostname import POD_HOSTNAME_ENV
from airflow_platform.local.mapping import LocalContext, Mapper, ProcessSpec
from airflow_platform.local.planning import QUEUE_LABEL, is_queue_worker, launch_record
from airflow_platform.local.rendering import Rendering
from airflow_platform.local.state import StateDir

STATE_KEY = QUEUES_KEY
VALUES_FILE = "queues-values.yaml"


def names(values: dict[str, Any]) -> list[str]:
    return [q["name"] for q in (values.get("workers") or {}).get("queues") or []]


def values_file(state: StateDir, values: dict[str, Any], urls: dict[str, str]) -> Path | None:
    """workers.queues with the URLs moto gave (None without queues); also set in `values`."""
    items = (values.get("workers") or {}).get("queues") or []
    if not items:
        return None
    for item in items:
        item["sqsQueueUrl"] = urls[item["name"]]
    path = state.root / VALUES_FILE
    path.write_text(yaml.safe_dump({"workers": {"queues": items}}))
    return path


def prepare(state: StateDir, rendering: Rendering, ctx: LocalContext) -> list[ProcessSpec]:
    """Record every queue's pool and scaling for the watchdog; the workers to run now."""
    mapper = Mapper(rendering, ctx)
    records: dict[str, Any] = {}
    now: list[ProcessSpec] = []
    data = state.load()
    running, draining = data.get("processes", {}), data.get("draining", {})
    for lane, workload in enumerate(filter(is_queue_worker, rendering.workloads()), start=1):
        queue = workload.labels[QUEUE_LABEL]
        container = workload.container("worker")
        assert container is not None, f"{workload.name} has no worker container"
        scaling = worker_scaling(rendering, workload, container)
        # Each replica has an address of its own (lane = the queue), its log server beside it.
        pool = [
            mapper.worker_process(workload, container, replica, lane)
            for replica in range(scaling.pool_size)
        ]
        records[queue] = {
            "queue": queue,
            "config": asdict(scaling),
            "pool": [s.name for s in pool],
            "hostnames": {s.name: s.env.get(POD_HOSTNAME_ENV, "") for s in pool},
            "launch": {s.name: launch_record(s) for s in pool},
            "database_url": ctx.database_url,
        }
        active = [s for s in pool if s.name in running and s.name not in draining]
        free = [s for s in pool if s.name not in running]
        now += active + free[: max(0, scaling.min_workers - len(active))]
    state.update(**{STATE_KEY: records, "component_ports": ctx.ports})
    return now


def autoscalers(
    state: StateDir, sup: Any, log: Any, known: dict[str, Autoscaler]
) -> list[Autoscaler]:
    """One autoscaler per queue recorded now (kept across rounds: each holds its window)."""
    queues = state.load().get(STATE_KEY) or {}
    for name in list(known):
        if name not in queues:
            del known[name]
    for name in queues:
        if name not in known:
            known[name] = Autoscaler(state, sup, log, queue=name)
    return list(known.values())


def workers(state: StateDir, sup: Any) -> dict[str, dict[str, Any]]:
    """Every queue's worker processes now: queue, pid, alive, draining, Airflow hostname."""
    data = state.load()
    records = data.get("processes", {})
    out = {}
    for queue, record in (data.get(STATE_KEY) or {}).items():
        for name in record["pool"]:
            if name in records:
                out[name] = {
                    "queue": queue,
                    "pid": records[name]["pid"],
                    "alive": sup.alive(name),
                    "draining": name in data.get("draining", {}),
                    "hostname": record["hostnames"].get(name, ""),
                }
    return out
