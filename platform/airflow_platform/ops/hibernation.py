"""Hibernate and resume an environment on a cluster.

Hibernation scales every Deployment of the release to 0 and pauses KEDA (annotation
`autoscaling.keda.sh/paused-replicas: "0"`); the database, the bucket, the Secrets and the
values stay. Each Deployment keeps its replica count in an annotation, which resume puts
back. An HPA (api-server, or workers without KEDA) leaves a Deployment at 0 replicas alone:
Kubernetes disables autoscaling while the target is scaled to zero. Missed schedules follow
each DAG's `catchup` once the schedulers are back.

For GitOps, the chart value `hibernate: true` renders the same state; `ops resume` then
refuses and names the value, since the next sync would undo it."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from airflow_platform.ops.errors import OpsError
from airflow_platform.ops.kube import Kube
from airflow_platform.ops.release import latest_release

HIBERNATED_ANNOTATION = "airflow-platform.io/hibernated-replicas"
KEDA_PAUSED = "autoscaling.keda.sh/paused-replicas"
# Our changes carry this field manager. Resume drops its managedFields entry, so that the
# next server-side apply by Helm 4 or Argo CD owns `spec.replicas` again without a conflict.
FIELD_MANAGER = "airflow-platform-ops"


@dataclass
class Change:
    kind: str
    name: str
    before: str
    after: str


@dataclass
class Outcome:
    changes: list[Change] = field(default_factory=list)
    seconds: float = 0.0


def _hibernated(kube: Kube) -> dict[str, int]:
    return {
        d.metadata.name: int(json.loads(d.metadata.annotations[HIBERNATED_ANNOTATION]))
        for d in kube.deployments()
        if HIBERNATED_ANNOTATION in (d.metadata.annotations or {})
    }


def _release_fields(kube: Kube, name: str, attempts: int = 5) -> None:
    """Remove our managedFields entry from a Deployment (JSON patch, guarded by `test`).

    The controllers update the Deployment's status right after a scale, which can move
    the entries between our read and our patch: the `test` then fails (422) or the
    object changed (409), and we read again."""
    ns = kube.target.namespace
    for attempt in range(1, attempts + 1):
        deployment = kube.call(kube.apps.read_namespaced_deployment, name, ns)
        ours = [
            i for i, entry in enumerate(deployment.metadata.managed_fields or [])
            if entry.manager == FIELD_MANAGER
        ]  # fmt: skip
        if not ours:
            return
        patch = []
        for i in reversed(ours):
            path = f"/metadata/managedFields/{i}/manager"
            patch += [{"op": "test", "path": path, "value": FIELD_MANAGER},
                      {"op": "remove", "path": f"/metadata/managedFields/{i}"}]  # fmt: skip
        try:
            kube.call(kube.apps.patch_namespaced_deployment, name, ns, patch)
            return
        except OpsError as exc:
            if exc.status not in (409, 422) or attempt == attempts:
                raise
        time.sleep(0.1 * attempt)


def hibernate(kube: Kube) -> Outcome:
    began = time.monotonic()
    release = latest_release(kube)
    if release.values.get("hibernate"):
        raise OpsError(
            f"release {release.name!r} is hibernated by its values (hibernate: true): nothing to do"
        )
    already = _hibernated(kube)
    if already:
        raise OpsError(
            f"release {release.name!r} is already hibernated ({', '.join(sorted(already))} "
            "keep their replica counts): `airflow-platform ops resume` brings it back"
        )
    deployments = kube.deployments()
    if not deployments:
        raise OpsError(f"release {release.name!r} has no Deployments to hibernate")
    outcome = Outcome()
    ns = kube.target.namespace
    for so in kube.scaled_objects():
        name = so["metadata"]["name"]
        kube.call(
            kube.custom.patch_namespaced_custom_object,
            "keda.sh", "v1alpha1", ns, "scaledobjects", name,
            {"metadata": {"annotations": {KEDA_PAUSED: "0"}}},
        )  # fmt: skip
        outcome.changes.append(Change("ScaledObject", name, "active", "paused at 0"))
    for d in deployments:
        replicas = d.spec.replicas if d.spec.replicas is not None else 1
        kube.call(
            kube.apps.patch_namespaced_deployment,
            d.metadata.name,
            ns,
            {
                "metadata": {"annotations": {HIBERNATED_ANNOTATION: str(replicas)}},
                "spec": {"replicas": 0},
            },
            field_manager=FIELD_MANAGER,
        )
        outcome.changes.append(Change("Deployment", d.metadata.name, str(replicas), "0"))
    outcome.seconds = time.monotonic() - began
    return outcome


def resume(kube: Kube) -> Outcome:
    began = time.monotonic()
    release = latest_release(kube)
    if release.values.get("hibernate"):
        raise OpsError(
            f"release {release.name!r} is hibernated by its values (hibernate: true): set "
            "hibernate: false in its values and upgrade (or let Argo CD sync)"
        )
    saved = _hibernated(kube)
    if not saved:
        raise OpsError(
            f"release {release.name!r} in namespace {kube.target.namespace!r} is not "
            "hibernated: nothing to resume (`airflow-platform ops status` shows its state)"
        )
    outcome = Outcome()
    ns = kube.target.namespace
    for name, replicas in sorted(saved.items()):
        kube.call(
            kube.apps.patch_namespaced_deployment,
            name,
            ns,
            {"metadata": {"annotations": {HIBERNATED_ANNOTATION: None}},
             "spec": {"replicas": replicas}},
            field_manager=FIELD_MANAGER,
        )  # fmt: skip
        _release_fields(kube, name)
        outcome.changes.append(Change("Deployment", name, "0", str(replicas)))
    for so in kube.scaled_objects():
        if KEDA_PAUSED in (so["metadata"].get("annotations") or {}):
            name = so["metadata"]["name"]
            kube.call(
                kube.custom.patch_namespaced_custom_object,
                "keda.sh", "v1alpha1", ns, "scaledobjects", name,
                {"metadata": {"annotations": {KEDA_PAUSED: None}}},
                field_manager=FIELD_MANAGER,
            )  # fmt: skip
            outcome.changes.append(Change("ScaledObject", name, "paused at 0", "active"))
    outcome.seconds = time.monotonic() - began
    return outcome
