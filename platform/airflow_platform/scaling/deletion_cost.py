"""Keep a worker pod's deletion cost in step with the tasks it runs.

A ReplicaSet that scales in deletes the pods with the lowest
`controller.kubernetes.io/pod-deletion-cost` first. The agent sets it to the number of
task instances the worker runs, so idle workers (cost 0) go first and a busy worker is
only chosen when every remaining one is busy — in which case the drain still lets its
tasks finish.

The count comes from the metadata database (running task instances whose `hostname` is
this worker's), not from the worker's processes: the agent runs as a separate container,
which sees no other container's processes without `shareProcessNamespace`, and the
database is what the scaler reads too, so both agree on what "busy" means.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from prometheus_client import CollectorRegistry, Counter, Gauge

DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"
POD_NAME_ENV = "POD_NAME"
POD_NAMESPACE_ENV = "POD_NAMESPACE"

log = logging.getLogger(__name__)


def deletion_cost(running_tasks: int) -> int:
    """Cost for a worker running `running_tasks`: 0 when idle, then one per task."""
    return max(0, min(running_tasks, 2**31 - 1))  # the annotation is an int32


def patch_pod_deletion_cost(api: k8s.CoreV1Api, namespace: str, pod: str, cost: int) -> None:
    """Set the deletion-cost annotation on one pod (a merge patch: other metadata untouched)."""
    body = {"metadata": {"annotations": {DELETION_COST_ANNOTATION: str(cost)}}}
    api.patch_namespaced_pod(name=pod, namespace=namespace, body=body)


def read_pod_deletion_cost(api: k8s.CoreV1Api, namespace: str, pod: str) -> int | None:
    annotations = api.read_namespaced_pod(name=pod, namespace=namespace).metadata.annotations
    value = (annotations or {}).get(DELETION_COST_ANNOTATION)
    return int(value) if value is not None else None


def core_v1_api() -> k8s.CoreV1Api:
    """In-cluster credentials inside a pod, KUBECONFIG (or ~/.kube/config) elsewhere."""
    try:
        k8s_config.load_incluster_config()
    except k8s_config.ConfigException:
        k8s_config.load_kube_config()
    return k8s.CoreV1Api()


@dataclass
class StepResult:
    running_tasks: int | None
    patched_cost: int | None  # the cost written this step, None when nothing was written
    error: str | None = None


class DeletionCostAgent:
    """Counts this worker's tasks and writes the cost only when it changes."""

    def __init__(
        self,
        count_running_tasks: Callable[[], int],
        write_cost: Callable[[int], None],
    ) -> None:
        self._count = count_running_tasks
        self._write = write_cost
        self.written_cost: int | None = None  # None: nothing written yet, so write first

    def step(self) -> StepResult:
        try:
            running = self._count()
        except Exception as exc:  # the database may be briefly unreachable; keep the cost
            log.warning("could not count running tasks: %s", exc)
            return StepResult(None, None, f"count failed: {exc}")
        cost = deletion_cost(running)
        if cost == self.written_cost:
            return StepResult(running, None)
        try:
            self._write(cost)
        except Exception as exc:  # retried next step, since written_cost is unchanged
            log.warning("could not write deletion cost %s: %s", cost, exc)
            return StepResult(running, None, f"write failed: {exc}")
        self.written_cost = cost
        return StepResult(running, cost)

    def run(
        self,
        interval_seconds: float,
        stop: threading.Event,
        on_step: Callable[[StepResult], None] | None = None,
    ) -> None:
        while not stop.is_set():
            result = self.step()
            if on_step is not None:
                on_step(result)
            stop.wait(interval_seconds)


class AgentMetrics:
    """The agent's Prometheus series, served on /metrics by `scaling worker-agent`.

    An operator asks three things of it: is it deciding (steps), is it writing (patches,
    the cost), and is it failing and where (errors by stage: the database count or the
    Kubernetes patch)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.steps = Counter("worker_agent_steps", "Deletion-cost decisions made.", registry=r)
        self.patches = Counter(
            "worker_agent_patches", "Deletion-cost annotations written to the pod.", registry=r
        )
        self.errors = Counter(
            "worker_agent_errors",
            "Failed steps, by stage: count (database) or write (Kubernetes API).",
            ["stage"],
            registry=r,
        )
        for stage in ("count", "write"):
            self.errors.labels(stage)  # both series exist at 0 from the start
        self.running = Gauge(
            "worker_agent_running_tasks", "Task instances this worker ran at the last count.",
            registry=r,
        )  # fmt: skip
        self.cost = Gauge(
            "worker_agent_deletion_cost", "The pod-deletion-cost last written (-1: none yet).",
            registry=r,
        )  # fmt: skip
        self.cost.set(-1)
        self.last_success = Gauge(
            "worker_agent_last_success_timestamp_seconds",
            "Unix time of the last step that counted and, when needed, wrote.",
            registry=r,
        )

    def observe(self, result: StepResult) -> None:
        self.steps.inc()
        if result.running_tasks is not None:
            self.running.set(result.running_tasks)
        if result.patched_cost is not None:
            self.patches.inc()
            self.cost.set(result.patched_cost)
        if result.error is None:
            self.last_success.set(time.time())
        else:
            self.errors.labels("count" if result.running_tasks is None else "write").inc()

    def serve(self, host: str, port: int) -> Any:
        """Serve /metrics on host:port in a thread; returns the server (call .shutdown())."""
        from prometheus_client import start_http_server

        server, _ = start_http_server(port, addr=host, registry=self.registry)
        return server
