"""`ops status` against a cluster: the Helm release, the Deployments, the Jobs, the worker
scaler, and the metadata database's view (scheduler heartbeat, import errors, canary).

The heartbeat comes from the API server's /api/v2/monitor/health, reached through the
Kubernetes API server's service proxy (no port-forward, no extra credentials: the health
endpoint needs no login). Import errors and the canary's result need the database: `ops
probe` runs in a scheduler pod through the exec API. `--no-db-view` skips both (then only
the Kubernetes API is contacted)."""

from __future__ import annotations

import json
from typing import Any

from airflow_platform.ops.errors import OpsError
from airflow_platform.ops.hibernation import HIBERNATED_ANNOTATION
from airflow_platform.ops.kube import COMPONENT_LABEL, Kube
from airflow_platform.ops.model import (
    Component,
    EnvironmentStatus,
    Heartbeat,
    Workers,
    derive_status,
)
from airflow_platform.ops.podexec import probe_in_pod
from airflow_platform.ops.release import latest_release

KEDA_PAUSED = "autoscaling.keda.sh/paused-replicas"


def _job_state(job: Any) -> str:
    conditions = {c.type: c.status for c in job.status.conditions or []}
    if conditions.get("Complete") == "True":
        return "complete"
    if conditions.get("Failed") == "True":
        return "failed"
    return "running"


def jobs_by_component(kube: Kube) -> dict[str, list[tuple[str, str]]]:
    jobs = kube.call(
        kube.batch.list_namespaced_job, kube.target.namespace, label_selector=kube.target.selector
    ).items
    found: dict[str, list[tuple[str, str]]] = {}
    for job in jobs:
        component = (job.metadata.labels or {}).get(COMPONENT_LABEL, "")
        found.setdefault(component, []).append((job.metadata.name, _job_state(job)))
    return found


def api_health(kube: Kube) -> Heartbeat:
    services = kube.call(
        kube.core.list_namespaced_service,
        kube.target.namespace,
        label_selector=f"{kube.target.selector},{COMPONENT_LABEL}=api-server",
    ).items
    if not services:
        return Heartbeat("unknown", detail="no api-server Service")
    svc = services[0]
    port = next((p.name or str(p.port) for p in svc.spec.ports), "http")
    try:
        body = kube.core.connect_get_namespaced_service_proxy_with_path(
            f"{svc.metadata.name}:{port}", kube.target.namespace, "api/v2/monitor/health",
            _request_timeout=10,
        )  # fmt: skip
    except Exception as exc:  # the proxy answers 503 while no endpoint can be reached
        reason = getattr(exc, "reason", None) or type(exc).__name__
        status = getattr(exc, "status", "")
        return Heartbeat("unknown", detail=f"API server unreachable through the service proxy "
                         f"({status} {reason})".replace("( ", "("))  # fmt: skip
    data = json.loads(body) if isinstance(body, str) else body
    if not isinstance(data, dict):
        data = json.loads(str(body).replace("'", '"'))
    scheduler = data.get("scheduler") or {}
    return Heartbeat(
        str(scheduler.get("status") or "unknown"),
        latest=scheduler.get("latest_scheduler_heartbeat"),
        detail="from /api/v2/monitor/health",
    )


def worker_scaler(kube: Kube, deployments: list[Any]) -> Workers | None:
    worker = next(
        (d for d in deployments if d.metadata.labels.get(COMPONENT_LABEL) == "worker"), None
    )
    if worker is None:
        return None
    current = worker.status.ready_replicas or 0
    for so in kube.scaled_objects():
        if (so["metadata"].get("labels") or {}).get(COMPONENT_LABEL, "worker") != "worker":
            continue  # an extra worker queue's (workers.queues)
        annotations = so["metadata"].get("annotations") or {}
        spec = so.get("spec", {})
        return Workers(
            current,
            spec.get("minReplicaCount"),
            spec.get("maxReplicaCount"),
            "keda",
            paused=KEDA_PAUSED in annotations
            or annotations.get("autoscaling.keda.sh/paused") == "true",
        )
    from kubernetes import client

    hpas = kube.call(
        client.AutoscalingV1Api(kube.api).list_namespaced_horizontal_pod_autoscaler,
        kube.target.namespace,
        label_selector=f"{kube.target.selector},{COMPONENT_LABEL}=worker",
    ).items
    for hpa in hpas:
        return Workers(current, hpa.spec.min_replicas, hpa.spec.max_replicas, "hpa")
    return Workers(current, None, None, "none")


def autoscaled_deployments(kube: Kube) -> set[str]:
    """Deployments whose replica count an HPA or a KEDA ScaledObject of the release owns."""
    from kubernetes import client

    names = {
        ((so.get("spec") or {}).get("scaleTargetRef") or {}).get("name")
        for so in kube.scaled_objects()
    }
    hpas = kube.call(
        client.AutoscalingV1Api(kube.api).list_namespaced_horizontal_pod_autoscaler,
        kube.target.namespace,
        label_selector=kube.target.selector,
    ).items
    names |= {
        h.spec.scale_target_ref.name for h in hpas if h.spec.scale_target_ref.kind == "Deployment"
    }
    return {n for n in names if n}


def cluster_status(kube: Kube, db_view: bool = True) -> EnvironmentStatus:
    release = latest_release(kube)
    deployments = kube.deployments()
    components = []
    hibernated = bool(release.values.get("hibernate"))
    autoscaled = autoscaled_deployments(kube)
    for d in sorted(deployments, key=lambda d: d.metadata.name):
        annotations = d.metadata.annotations or {}
        hibernated = hibernated or HIBERNATED_ANNOTATION in annotations
        components.append(
            Component(
                d.metadata.labels.get(COMPONENT_LABEL, d.metadata.name),
                d.status.ready_replicas or 0,
                d.spec.replicas if d.spec.replicas is not None else 1,
                detail=f"deployment/{d.metadata.name}",
                autoscaled=d.metadata.name in autoscaled,
            )
        )
    jobs = jobs_by_component(kube)
    migrations = jobs.get("migrations", [])
    snapshots = jobs.get("snapshot", [])
    heartbeat = api_health(kube) if db_view else Heartbeat("unknown", detail="not asked")
    status = EnvironmentStatus(
        source="cluster",
        environment=str(release.values.get("environmentName") or release.name),
        status="",
        revision=str(release.revision),
        last_update=release.last_deployed,
        release_status=release.status,
        components=components,
        workers=worker_scaler(kube, deployments),
        heartbeat=heartbeat,
        migrations=", ".join(f"{n}: {s}" for n, s in migrations)
        or "no Job (hooks are deleted once they succeed)",
    )
    if release.description:
        status.notes.append(f"release: {release.description}")
    if db_view and not hibernated:
        try:
            found = probe_in_pod(kube)
        except OpsError as exc:
            status.notes.append(f"import errors and canary unknown: {exc}")
        else:
            status.import_errors = found.get("import_errors")
            status.canary = found.get("canary")
            if status.heartbeat.status == "unknown" and found.get("heartbeat"):
                status.heartbeat = Heartbeat(**found["heartbeat"])
    status.status = derive_status(
        release.status,
        release.revision,
        hibernated=hibernated,
        snapshot_running=any(s == "running" for _, s in snapshots),
        migrations_running=any(s == "running" for _, s in migrations),
        components=components,
        heartbeat=status.heartbeat,
    )
    return status
