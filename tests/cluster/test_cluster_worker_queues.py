"""Worker queues through a release's life on a real API server: install with two extra
queues, upgrade to three, roll back to two, each time checking the worker Deployments and
their ScaledObjects the API server holds.

Same adaptations as test_cluster_helm_lifecycle.py (Kubernetes 1.20: relaxed kubeVersion,
the served-apis post-renderer, no worker agent, no kubelet). KEDA's CRDs are installed but
KEDA does not run, so the Deployments keep the API server's default of one replica: what is
checked is what helm creates, changes and removes, not the scaling itself (the e2e tier runs
the policy on real workers).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from cluster_node_agent import DeclaredExit
from cluster_tools import (
    REPO,
    Cluster,
    Helm,
    chart_for_cluster,
    namespace_with_secrets,
)
from kubernetes import client

from airflow_platform.procs import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
STEPS = True  # one story: later steps are skipped once a step fails (see conftest)

RELEASE = "queues"
NS = "queues"
CHART = REPO / "charts" / "airflow-platform"
VALUES = CHART / "ci" / "eks-values.yaml"
INSTANCE = f"app.kubernetes.io/instance={RELEASE}"
COMPONENT = "app.kubernetes.io/component"
REVISION = "deployment.kubernetes.io/revision"
URL = "https://sqs.us-east-1.amazonaws.com/123456789012/"
GPU = {"name": "gpu", "sqsQueueUrl": URL + "gpu", "environmentClass": "mw1.large", "maxWorkers": 4}
ETL = {"name": "etl", "sqsQueueUrl": URL + "etl", "minWorkers": 1, "maxWorkers": 3}
IO = {"name": "io", "sqsQueueUrl": URL + "io", "maxWorkers": 2, "replacementStrategy": "FORCED"}


@dataclass
class Release:
    cluster: Cluster
    helm: Helm
    chart: Path
    served: Path
    work: Path
    hashes: dict[int, dict[str, str]] = field(default_factory=dict)  # revision -> deploy -> hash

    def upgrade(self, *queues: dict) -> None:
        extra = self.work / f"queues-{len(queues)}.yaml"
        extra.write_text(yaml.safe_dump({"workers": {"queues": list(queues)}}))
        self.helm(
            "upgrade", "--install", RELEASE, str(self.chart), "-n", NS, "-f", str(VALUES),
            "-f", str(extra), "--set", "workers.deletionCostAgent.enabled=false",
            "--wait", "--timeout", "10m",
            "--post-renderer", "served-apis", "--post-renderer-args", str(self.served),
        )  # fmt: skip

    def workers(self) -> dict[str, client.V1Deployment]:
        deployments = self.cluster.apps.list_namespaced_deployment(NS, label_selector=INSTANCE)
        return {
            d.metadata.labels[COMPONENT]: d
            for d in deployments.items
            if d.metadata.labels[COMPONENT].startswith("worker")
        }

    def scaled_objects(self) -> dict[str, dict]:
        items = client.CustomObjectsApi(self.cluster.api).list_namespaced_custom_object(
            "keda.sh", "v1alpha1", NS, "scaledobjects", label_selector=INSTANCE
        )["items"]
        return {o["metadata"]["labels"][COMPONENT]: o for o in items}

    def network_policies(self) -> set[str]:
        items = client.NetworkingV1Api(self.cluster.api).list_namespaced_network_policy(
            NS, label_selector=INSTANCE
        )
        return {p.metadata.labels[COMPONENT] for p in items.items}

    def pods_of(self, component: str) -> list[client.V1Pod]:
        pods = self.cluster.core.list_namespaced_pod(
            NS, label_selector=f"{INSTANCE},{COMPONENT}={component}"
        )
        return [p for p in pods.items if not p.metadata.deletion_timestamp]

    def template_hashes(self) -> dict[str, str]:
        """Worker Deployment -> pod-template-hash of its current ReplicaSet."""
        sets = self.cluster.apps.list_namespaced_replica_set(NS, label_selector=INSTANCE).items
        out = {}
        for name, deployment in self.workers().items():
            revision = deployment.metadata.annotations[REVISION]
            (current,) = [
                rs
                for rs in sets
                if rs.metadata.annotations.get(REVISION) == revision
                and any(o.uid == deployment.metadata.uid for o in rs.metadata.owner_references)
            ]
            out[name] = current.metadata.labels["pod-template-hash"]
        return out

    def ready(self) -> bool:
        return all(
            (d.status.observed_generation or 0) >= d.metadata.generation
            and (d.status.updated_replicas or 0) == d.spec.replicas
            and (d.status.available_replicas or 0) == d.spec.replicas
            and (d.status.replicas or 0) == d.spec.replicas
            for d in self.workers().values()
        )

    def check(self, *queues: dict) -> None:
        """The API server holds one worker Deployment, ScaledObject and NetworkPolicy per
        queue, each Deployment owning its own pods only, each ScaledObject on its queue."""
        expected = {"worker", *(f"worker-{q['name']}" for q in queues)}
        workers = self.workers()
        assert set(workers) == expected
        assert set(self.scaled_objects()) == expected
        assert self.network_policies() >= expected
        for component, deployment in workers.items():
            assert deployment.spec.selector.match_labels[COMPONENT] == component
            pods = self.pods_of(component)
            assert pods and all(p.metadata.labels[COMPONENT] == component for p in pods)
            args = deployment.spec.template.spec.containers[0].args
            if component == "worker":
                assert "--queues" not in args, args
            else:
                assert args[-2:] == ["--queues", component.removeprefix("worker-")], args
        objects = self.scaled_objects()
        others = ", ".join(f"'{q['name']}'" for q in queues)
        default_query = objects["worker"]["spec"]["triggers"][0]["metadata"]["query"]
        assert default_query.endswith(f" AND queue NOT IN ({others})"), default_query
        for q in queues:
            spec = objects[f"worker-{q['name']}"]["spec"]
            assert spec["scaleTargetRef"]["name"] == workers[f"worker-{q['name']}"].metadata.name
            assert spec["minReplicaCount"] == q.get("minWorkers", 0)
            assert spec["maxReplicaCount"] == q["maxWorkers"]
            triggers = {t["name"]: t["metadata"] for t in spec["triggers"]}
            assert triggers["running-and-queued"]["query"].endswith(f" AND queue = '{q['name']}'")
            assert triggers["sqs-backlog"]["queueURL"] == q["sqsQueueUrl"]


@pytest.fixture(scope="module")
def release(
    cluster: Cluster, helm: Helm, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Release]:
    work = tmp_path_factory.mktemp("queues-chart")
    chart, served = chart_for_cluster(cluster, work)
    namespace_with_secrets(cluster, NS, VALUES)
    migrations = DeclaredExit(
        {"app.kubernetes.io/instance": RELEASE, COMPONENT: "migrations"},
        why="`airflow db migrate` runs against real PostgreSQL in the e2e tier",
    )
    cluster.agent.evaluators.insert(0, migrations)
    yield Release(cluster, helm, chart, served, work)
    cluster.agent.evaluators.remove(migrations)
    helm("uninstall", RELEASE, "-n", NS, "--wait", "--timeout", "5m", check=False)


def test_install_with_two_queues(release: Release) -> None:
    release.upgrade(GPU, ETL)
    assert release.ready()
    release.check(GPU, ETL)
    release.hashes[1] = release.template_hashes()


def test_upgrade_to_three_queues(release: Release) -> None:
    release.upgrade(GPU, ETL, IO)  # a selector change would fail here (immutable field)
    assert release.ready()
    release.check(GPU, ETL, IO)
    io = release.workers()["worker-io"]
    assert io.spec.strategy.rolling_update.max_surge == "100%"
    # Every Airflow pod learns the new queue's URL (predefined_queues): the workers roll.
    hashes = release.template_hashes()
    assert all(hashes[n] != h for n, h in release.hashes[1].items())
    release.hashes[2] = hashes


def test_rollback_to_two_queues(release: Release) -> None:
    release.helm("rollback", RELEASE, "1", "-n", NS, "--wait", "--timeout", "10m")
    history = yaml.safe_load(release.helm("history", RELEASE, "-n", NS, "-o", "yaml").stdout)
    assert [h["revision"] for h in history] == [1, 2, 3]
    assert history[-1]["status"] == "deployed"

    def back() -> bool:
        return set(release.workers()) == {"worker", "worker-gpu", "worker-etl"} and release.ready()

    wait_until(back, 300, "the third queue's Deployment gone and the rest ready", interval=1)
    wait_until(lambda: not release.pods_of("worker-io"), 180, "worker-io pods gone", interval=1)
    release.check(GPU, ETL)
    # Identical pod templates: each worker Deployment is back on its first ReplicaSet.
    assert release.template_hashes() == release.hashes[1]
