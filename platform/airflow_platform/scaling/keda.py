"""The KEDA ScaledObject settings that approximate the scaling policy on Kubernetes.

The chart renders these (a chart test can compare its rendering with `scaled_object_spec`).
How each part of the policy maps, and where it can only be approximated:

- MWAA's formula: a PostgreSQL trigger returning ceil((running + queued) / tasks per
  worker) with target 1. For an AverageValue metric the HPA wants ceil(metric / target)
  replicas, i.e. exactly the formula; min/maxReplicaCount clamp it.
- Never below the busy workers: a second trigger counting the distinct hosts that run
  tasks, target 1. The HPA takes the highest of its metrics, so the floor holds.
- Scale up at once: scaleUp has no stabilization window and a policy allowing up to
  maxWorkers new pods per 15 s. Approximation: the HPA evaluates every 15 s
  (--horizontal-pod-autoscaler-sync-period), so a burst waits up to that long plus
  the metric query; pollingInterval only drives 0 <-> 1 activation.
- Scale in to the window's peak after the idle window: scaleDown's stabilization window
  (the HPA keeps the highest recommendation of the window) set to the idle window, and a
  policy allowing every surplus pod to go in one period. Approximation: the HPA samples
  every 15 s, so a peak shorter than that may not be recorded, and the window starts when
  the HPA starts (no first-window hold after a restart of the controller).
- Tolerance: the HPA ignores changes within 10 % of the target (ratio |1 - metric /
  (target * replicas)| <= 0.1), so with 11 or more workers a one-worker change can be
  skipped. Kubernetes 1.33+ accepts behavior.scale{Up,Down}.tolerance (feature gate
  HPAConfigurableTolerance: alpha in 1.33, beta in 1.35); set it to 0 where available.
- Which pod goes: the policy only says how many. The ReplicaSet removes the pods with the
  lowest controller.kubernetes.io/pod-deletion-cost first, which the worker agent keeps
  equal to the pod's running tasks; a pod chosen while busy drains (SIGTERM is a warm
  shutdown), so a stale cost costs time, never a task.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_platform.scaling.policy import PolicyConfig

HPA_PERIOD_SECONDS = 15


def queue_condition(queue: str | None = None, others: Sequence[str] = ()) -> str:
    """The task instances of one worker queue: an extra queue's own (`queue`), or the
    default queue's, i.e. all but the extra queues (`others`); "" when there are none."""
    if queue is not None:
        return f" AND queue = '{queue}'"
    if others:
        return " AND queue NOT IN (" + ", ".join(f"'{q}'" for q in others) + ")"
    return ""


def demand_query(tasks_per_worker: int, condition: str = "") -> str:
    return (
        f"SELECT ceil(count(*)::decimal / {int(tasks_per_worker)}) FROM task_instance"
        f" WHERE state IN ('running', 'queued'){condition}"
    )


BUSY_WORKERS_QUERY = (
    "SELECT count(DISTINCT hostname) FROM task_instance"
    " WHERE state = 'running' AND coalesce(hostname, '') <> ''"
)


def scaled_object_spec(
    config: PolicyConfig,
    polling_interval: int = 5,
    auth_name: str = "airflow-keda-db",
    with_tolerance: bool = False,
) -> dict[str, Any]:
    """The `spec` fields of the workers' ScaledObject (without scaleTargetRef)."""
    burst = {"type": "Pods", "value": config.max_workers, "periodSeconds": HPA_PERIOD_SECONDS}
    scale_up: dict[str, Any] = {
        "stabilizationWindowSeconds": 0,
        "selectPolicy": "Max",
        "policies": [burst],
    }
    scale_down: dict[str, Any] = {
        "stabilizationWindowSeconds": round(config.scale_in_idle_seconds),
        "selectPolicy": "Max",
        "policies": [burst],
    }
    if with_tolerance:
        scale_up["tolerance"] = "0"
        scale_down["tolerance"] = "0"

    def trigger(name: str, query: str) -> dict[str, Any]:
        return {
            "type": "postgresql",
            "name": name,
            "metadata": {"query": query, "targetQueryValue": "1"},
            "authenticationRef": {"name": auth_name},
        }

    return {
        "pollingInterval": polling_interval,
        # Only used to go from 1 to 0 workers (minWorkers 0): the same idle window.
        "cooldownPeriod": round(config.scale_in_idle_seconds),
        "minReplicaCount": config.min_workers,
        "maxReplicaCount": config.max_workers,
        "advanced": {
            "horizontalPodAutoscalerConfig": {
                "behavior": {"scaleUp": scale_up, "scaleDown": scale_down}
            }
        },
        "triggers": [
            trigger("running-and-queued", demand_query(config.tasks_per_worker)),
            trigger("busy-workers", BUSY_WORKERS_QUERY),
        ],
    }
