"""Planning: which rendered containers become which local processes.

Reads only the chart's rendering (through mapping.py): Airflow containers become processes,
one per replica; the migrations Job runs once; one dagsync feeds the shared sync root; the
worker Deployment becomes a pool of worker replicas the autoscaler draws from. What a
process needs later (its launch record, its fingerprint) is derived here too.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from airflow_platform.local.autoscaler import (
    WORKER_COMPONENT,
    ScalingConfigError,
    WorkerScaling,
    worker_scaling,
)
from airflow_platform.local.hostname import POD_HOSTNAME_ENV
from airflow_platform.local.mapping import LocalContext, Mapper, ProcessSpec
from airflow_platform.local.rendering import Container, Rendering, Workload

# Airflow components in start order; all start together, health is awaited afterwards.
AIRFLOW_COMPONENTS = (
    "scheduler",
    "dag-processor",
    "triggerer",
    "api-server",
    "execution-api",
    "worker",
)
# The pod annotation naming the MWAA log group a pod's output belongs to.
LOG_GROUP_ANNOTATION = "airflow-platform.io/cloudwatch-log-group"


class PlanError(RuntimeError):
    """The rendering cannot be run locally; the message says what is missing."""


@dataclass
class Plan:
    migrations: list[ProcessSpec] = field(default_factory=list)
    dagsync: list[ProcessSpec] = field(default_factory=list)
    components: list[ProcessSpec] = field(default_factory=list)
    workers: list[ProcessSpec] = field(default_factory=list)  # every replica the pool may run
    scaling: WorkerScaling | None = None
    skipped: list[str] = field(default_factory=list)
    log_groups: dict[str, str] = field(default_factory=dict)  # process -> MWAA log group

    def as_dict(self) -> dict[str, list[ProcessSpec]]:
        return {
            "migrations": self.migrations,
            "dagsync": self.dagsync,
            "components": self.components,
            "workers": self.workers,
        }


def fingerprint(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def spec_fingerprint(spec: ProcessSpec) -> str:
    return fingerprint([spec.argv, spec.env])


def is_airflow(container: Container) -> bool:
    """An Airflow component: `airflow ...` or the entrypoint wrapping it. Other platform
    containers (e.g. the worker's pod-deletion-cost agent) talk to the Kubernetes API,
    which does not exist locally, and are not run."""
    argv = [*container.command, *container.args]
    if not argv:
        return False
    name = Path(argv[0]).name
    return name == "airflow" or (name == "airflow-platform" and argv[1:2] == ["bootstrap"])


def is_dagsync(container: Container) -> bool:
    argv = [*container.command, *container.args]
    return "dagsync" in argv[:3]


QUEUE_LABEL = "airflow-platform.io/worker-queue"  # on each workers.queues Deployment


def is_queue_worker(workload: Workload) -> bool:
    return workload.kind == "Deployment" and QUEUE_LABEL in workload.labels


def make_plan(rendering: Rendering, ctx: LocalContext, rendered_at: Path) -> Plan:
    mapper = Mapper(rendering, ctx)
    plan = Plan()
    dagsync_source: tuple[Workload, Container] | None = None
    for workload in rendering.workloads():
        if is_queue_worker(workload):
            continue  # workers.queues: queues.prepare plans and runs them
        group = workload.annotations.get(LOG_GROUP_ANNOTATION, "")
        for container in workload.containers + workload.init_containers:
            if is_dagsync(container):
                sidecar = container.restart_policy == "Always" or container in workload.containers
                # The dag-processor's sidecar: it also writes the parse requests.
                if sidecar and (dagsync_source is None or workload.component == "dag-processor"):
                    dagsync_source = (workload, container)
                continue
            if mapper.is_log_server(workload, container):
                continue  # one per worker replica, beside it (worker_process)
            if container in workload.init_containers or not is_airflow(container):
                if container not in workload.init_containers:
                    plan.skipped.append(f"{workload.component}/{container.name}")
                continue
            if workload.kind == "Job":
                spec = mapper.process(workload, container, 0, name=workload.component)
                plan.migrations.append(spec)
                plan.log_groups[spec.name] = group
                continue
            if workload.component == WORKER_COMPONENT:
                try:
                    plan.scaling = worker_scaling(rendering, workload, container)
                except ScalingConfigError as exc:
                    raise PlanError(str(exc)) from exc
                pool = [
                    mapper.worker_process(workload, container, replica)
                    for replica in range(plan.scaling.pool_size)
                ]
                plan.workers = pool
                plan.components += pool[: plan.scaling.min_workers]
                plan.log_groups.update({s.name: group for s in pool})
                continue
            for replica in range(workload.replicas):
                spec = mapper.process(workload, container, replica)
                plan.components.append(spec)
                plan.log_groups[spec.name] = group
    if dagsync_source is not None:
        # One dagsync feeds the shared sync root (every pod has its own in a cluster).
        spec = mapper.process(*dagsync_source, 0, name="dagsync")
        spec.component = "dagsync"
        plan.dagsync.append(spec)
    _check_complete(plan, rendered_at)
    return plan


def _check_complete(plan: Plan, rendered_at: Path) -> None:
    found = {s.component for s in plan.components}
    missing = [c for c in AIRFLOW_COMPONENTS if not any(f.startswith(c) for f in found)]
    if missing or not plan.migrations or not plan.dagsync:
        raise PlanError(
            "the rendered chart lacks workloads the local platform runs: "
            + ", ".join(
                missing
                + ([] if plan.migrations else ["migrations Job"])
                + ([] if plan.dagsync else ["dagsync sidecar"])
            )
            + f" (components found: {sorted(found)}; rendering in {rendered_at})"
        )


def api_spec(components: list[ProcessSpec]) -> ProcessSpec:
    for spec in components:
        if spec.component.startswith("api-server") and spec.http_probe:
            return spec
    raise PlanError("the rendered api-server has no HTTP probe to find its port by")


def spec_env(plan: Plan, component: str, key: str) -> str:
    """A variable of the first process of `component`, as the chart rendered it."""
    for spec in [*plan.dagsync, *plan.components, *plan.workers]:
        if spec.component == component and key in spec.env:
            return spec.env[key]
    raise PlanError(f"the rendered {component} sets no {key}: the chart must render it")


def launch_record(spec: ProcessSpec) -> dict[str, Any]:
    return {
        "argv": spec.argv,
        "env": spec.env,
        "cwd": str(spec.cwd),
        "restart": True,
        "name": spec.name,
        "component": spec.component,
        "container": spec.container,
        "http_probe": list(spec.http_probe) if spec.http_probe else None,
        "ports": {str(k): v for k, v in spec.ports.items()},
        "notes": spec.notes,
        "companions": [launch_record(c) for c in spec.companions],
    }


def spec_from_launch(data: dict[str, Any]) -> ProcessSpec:
    probe = data.get("http_probe")
    return ProcessSpec(
        name=data["name"],
        component=data["component"],
        container=data["container"],
        argv=list(data.get("argv", [])),
        env=dict(data.get("env", {})),
        ports={int(k): v for k, v in data.get("ports", {}).items()},
        http_probe=(probe[0], int(probe[1])) if probe else None,
        cwd=Path(data.get("cwd", ".")),
        notes=list(data.get("notes", [])),
        companions=[spec_from_launch(c) for c in data.get("companions", [])],
    )


def autoscaling_record(plan: Plan, ctx: LocalContext) -> dict[str, Any]:
    assert plan.scaling is not None
    pool = plan.workers
    return {
        "config": asdict(plan.scaling),
        "pool": [s.name for s in pool],
        "hostnames": {s.name: s.env.get(POD_HOSTNAME_ENV, "") for s in pool},
        "launch": {s.name: {**launch_record(s), "fingerprint": spec_fingerprint(s)} for s in pool},
        # The local equivalent of the kedaDatabase Secret the ScaledObject reads.
        "database_url": ctx.database_url,
    }


def choose_workers(plan: Plan, data: dict[str, Any]) -> list[ProcessSpec]:
    """Workers `up` ensures: those the autoscaler runs (not draining), topped up to
    minWorkers with free names; the autoscaler adds or drains the rest."""
    assert plan.scaling is not None
    records = data.get("processes", {})
    draining = data.get("draining", {})
    active = [s for s in plan.workers if s.name in records and s.name not in draining]
    free = [s for s in plan.workers if s.name not in records]
    return active + free[: max(0, plan.scaling.min_workers - len(active))]
