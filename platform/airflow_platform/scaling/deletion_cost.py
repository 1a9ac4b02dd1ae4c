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
from collections.abc import Callable
from dataclasses import dataclass

from kubernetes import client as k8s
from kubernetes import config as k8s_config

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
