"""The test cluster itself: a real 1.20 API server and scheduler, and a node agent that
reports only what it can stand behind."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from cluster_node_agent import ZONE_LABEL
from cluster_tools import Cluster
from kubernetes import client

from airflow_platform.procs import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

NS = "harness"


@pytest.fixture(scope="module")
def namespace(cluster: Cluster):
    cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
    wait_until(
        lambda: cluster.core.read_namespaced_service_account("default", NS), 60, "default SA"
    )
    yield NS
    cluster.core.delete_namespace(NS)


def test_api_server_reports_the_built_version(cluster: Cluster) -> None:
    version = json.loads(cluster.kubectl("version", "-o", "json").stdout)["serverVersion"]
    assert version["gitVersion"] == "v1.20.2"


def test_nodes_span_two_zones(cluster: Cluster) -> None:
    zones = Counter(n.metadata.labels[ZONE_LABEL] for n in cluster.core.list_node().items)
    assert sorted(zones.values()) == [2, 2], zones


def test_scheduler_spreads_and_agent_runs_pods(cluster: Cluster, namespace: str) -> None:
    labels = {"app": "spread"}
    deployment = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="spread"),
        spec=client.V1DeploymentSpec(
            replicas=4,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    containers=[client.V1Container(name="main", image="busybox")],
                    topology_spread_constraints=[
                        client.V1TopologySpreadConstraint(
                            max_skew=1,
                            topology_key=key,
                            when_unsatisfiable="DoNotSchedule",
                            label_selector=client.V1LabelSelector(match_labels=labels),
                        )
                        for key in (ZONE_LABEL, "kubernetes.io/hostname")
                    ],
                ),
            ),
        ),
    )
    cluster.apps.create_namespaced_deployment(namespace, deployment)
    wait_until(
        lambda: (
            (
                cluster.apps.read_namespaced_deployment(
                    "spread", namespace
                ).status.available_replicas
                or 0
            )
            == 4
        ),
        120,
        "4 available replicas",
        interval=0.5,
    )
    pods = cluster.core.list_namespaced_pod(namespace, label_selector="app=spread").items
    assert len({p.spec.node_name for p in pods}) == 4  # one per host: hostname spread
    assert all(p.status.pod_ip and p.status.container_statuses[0].ready for p in pods)

    # Scale-in: the API server marks pods terminating, the agent finishes them.
    cluster.apps.patch_namespaced_deployment_scale("spread", namespace, {"spec": {"replicas": 1}})
    wait_until(
        lambda: (
            len(cluster.core.list_namespaced_pod(namespace, label_selector="app=spread").items) == 1
        ),
        120,
        "terminated pods to be gone",
        interval=0.5,
    )


def _pod(name: str, restart: str, **container) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1PodSpec(
            restart_policy=restart,
            containers=[client.V1Container(name="main", image="busybox", **container)],
        ),
    )


def _phase(cluster: Cluster, name: str) -> client.V1Pod:
    return cluster.core.read_namespaced_pod(name, NS)


def test_agent_never_invents_success(cluster: Cluster, namespace: str) -> None:
    cluster.core.create_namespaced_pod(namespace, _pod("opaque", "Never", command=["true"]))
    pod = wait_until(
        lambda: (p := _phase(cluster, "opaque")).status.phase in ("Succeeded", "Failed") and p,
        120,
        "the opaque pod to finish",
        interval=0.5,
    )
    assert pod.status.phase == "Failed"
    assert pod.status.reason == "NotEvaluated"


def test_missing_secret_keeps_pod_pending(cluster: Cluster, namespace: str) -> None:
    env = [
        client.V1EnvVar(
            name="DB",
            value_from=client.V1EnvVarSource(
                secret_key_ref=client.V1SecretKeySelector(name="absent", key="url")
            ),
        )
    ]
    cluster.core.create_namespaced_pod(namespace, _pod("needs-secret", "Always", env=env))

    def waiting_reason() -> str | None:
        statuses = _phase(cluster, "needs-secret").status.container_statuses or []
        return statuses[0].state.waiting.reason if statuses and statuses[0].state.waiting else None

    assert wait_until(waiting_reason, 120, "a waiting reason") == "CreateContainerConfigError"
    cluster.core.create_namespaced_secret(
        namespace,
        client.V1Secret(metadata=client.V1ObjectMeta(name="absent"), string_data={"url": "x"}),
    )
    wait_until(
        lambda: _phase(cluster, "needs-secret").status.phase == "Running",
        120,
        "the pod to start once its Secret exists",
        interval=0.5,
    )
