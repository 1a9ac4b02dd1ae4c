"""The worker agent against a real API server: the chart's worker ServiceAccount, Role and
RoleBinding are rendered and applied, worker pods run under a ReplicaSet, and the real
DeletionCostAgent writes its pod's deletion cost with a pod-bound token of that account,
loaded the way the agent loads it in a pod (in-cluster configuration from the files of the
projected token volume).

The task counts come from the test: counting a worker's tasks in the metadata database is
exercised against real PostgreSQL in tests/scaling. The ReplicaSet's preference for the lowest
deletion cost is not exercised here: Kubernetes 1.20 predates it (PodDeletionCost arrived as
an alpha feature gate in 1.21), and so does the admission policy that narrows the Role to the
annotation of the agent's own pod (admissionregistration.k8s.io/v1, Kubernetes 1.30); that
policy's rules are evaluated in tests/chart/test_workers_agent.py.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
import yaml
from cluster_tools import REPO, Cluster, _tool
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.config.incluster_config import InClusterConfigLoader

from airflow_platform.procs import wait_until
from airflow_platform.scaling.deletion_cost import (
    DELETION_COST_ANNOTATION,
    DeletionCostAgent,
    patch_pod_deletion_cost,
    read_pod_deletion_cost,
)

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

NS = "deletion-cost"
RELEASE = "airflow"
CHART = REPO / "charts" / "airflow-platform"
ACCOUNT = "airflow-airflow-platform-worker"
AUDIENCE = "https://kubernetes.default.svc.cluster.local"  # the API server's --api-audiences
SELECTOR = {"app.kubernetes.io/name": "deletion-cost-test"}


def _chart_rbac() -> list[dict]:
    """The worker's ServiceAccount, Role and RoleBinding as the chart renders them for NS."""
    done = subprocess.run(
        [
            _tool("helm"), "template", RELEASE, str(CHART), "--namespace", NS,
            "-f", str(CHART / "ci" / "default-values.yaml"),
            "--show-only", "templates/rbac/serviceaccounts.yaml",
            "--show-only", "templates/rbac/worker-agent.yaml",
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    objects = [d for d in yaml.safe_load_all(done.stdout) if d]
    wanted = [
        o
        for o in objects
        if o["kind"] in ("Role", "RoleBinding")
        or (o["kind"] == "ServiceAccount" and o["metadata"]["name"] == ACCOUNT)
    ]
    assert sorted(o["kind"] for o in wanted) == ["Role", "RoleBinding", "ServiceAccount"]
    return wanted


@pytest.fixture(scope="module")
def workers(cluster: Cluster) -> Iterator[list[client.V1Pod]]:
    """Three running worker pods of a ReplicaSet, under the chart's worker account."""
    cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
    cluster.kubectl(
        "apply", "--server-side", "-n", NS, "-f", "-", input=yaml.safe_dump_all(_chart_rbac())
    )
    replica_set = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "worker", "namespace": NS},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": SELECTOR},
            "template": {
                "metadata": {"labels": SELECTOR},
                "spec": {
                    "serviceAccountName": ACCOUNT,
                    "automountServiceAccountToken": False,
                    "containers": [{"name": "worker", "image": "airflow-platform:test"}],
                },
            },
        },
    }
    cluster.apps.create_namespaced_replica_set(NS, replica_set)
    label = ",".join(f"{k}={v}" for k, v in SELECTOR.items())

    def running() -> list[client.V1Pod]:
        pods = cluster.core.list_namespaced_pod(NS, label_selector=label).items
        return pods if sum(p.status.phase == "Running" for p in pods) == 3 else []

    wait_until(running, 120, "three running worker pods", interval=0.5)
    yield sorted(running(), key=lambda p: p.metadata.name)
    cluster.core.delete_namespace(NS)


def _bound_token(cluster: Cluster, pod: client.V1Pod) -> str:
    """What the kubelet writes into the projected token volume: a token bound to the pod."""
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(
            audiences=[AUDIENCE],
            expiration_seconds=3600,
            bound_object_ref=client.V1BoundObjectReference(
                api_version="v1", kind="Pod", name=pod.metadata.name, uid=pod.metadata.uid
            ),
        )
    )
    return cluster.core.create_namespaced_service_account_token(ACCOUNT, NS, request).status.token


@pytest.fixture(scope="module")
def agent_api(
    cluster: Cluster, workers: list[client.V1Pod], tmp_path_factory: pytest.TempPathFactory
) -> client.CoreV1Api:
    """The API as the agent in the first worker pod sees it: in-cluster configuration read from
    the files the chart's projected volume provides."""
    mount = tmp_path_factory.mktemp("serviceaccount")
    (mount / "token").write_text(_bound_token(cluster, workers[0]))
    (mount / "ca.crt").write_bytes(Path(cluster.control_plane.pki.ca_cert).read_bytes())
    configuration = client.Configuration()
    InClusterConfigLoader(
        token_filename=str(mount / "token"),
        cert_filename=str(mount / "ca.crt"),
        environ={
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(cluster.control_plane.api_port),
        },
    ).load_and_set(configuration)
    return client.CoreV1Api(client.ApiClient(configuration))


def test_the_token_names_the_account_and_the_pod(cluster: Cluster, workers) -> None:
    """The identity the admission policy keys on (userInfo.extra pod-name), as the API server
    authenticates the agent's token."""
    review = client.AuthenticationV1Api(cluster.api).create_token_review(
        client.V1TokenReview(spec=client.V1TokenReviewSpec(token=_bound_token(cluster, workers[0])))
    )
    assert review.status.authenticated is True
    assert review.status.user.username == f"system:serviceaccount:{NS}:{ACCOUNT}"
    assert review.status.user.extra["authentication.kubernetes.io/pod-name"] == [
        workers[0].metadata.name
    ]


def test_the_agent_keeps_its_pod_cost_in_step_with_its_tasks(
    cluster: Cluster, workers, agent_api
) -> None:
    me = workers[0].metadata.name
    running_tasks = iter([2, 2, 0, 5])
    agent = DeletionCostAgent(
        lambda: next(running_tasks), partial(patch_pod_deletion_cost, agent_api, NS, me)
    )
    before = cluster.core.read_namespaced_pod(me, NS).metadata
    written = []
    for _ in range(4):
        result = agent.step()
        assert result.error is None
        written.append(result.patched_cost)
        # Read back with the administrator's client: the API server stored what was written.
        assert read_pod_deletion_cost(cluster.core, NS, me) == agent.written_cost
    assert written == [2, None, 0, 5]  # unchanged counts are not written again
    after = cluster.core.read_namespaced_pod(me, NS).metadata
    assert after.labels == before.labels
    assert after.owner_references == before.owner_references
    assert {k: v for k, v in after.annotations.items() if k != DELETION_COST_ANNOTATION} == (
        before.annotations or {}
    )
    for other in workers[1:]:
        assert read_pod_deletion_cost(cluster.core, NS, other.metadata.name) is None


def _forbidden(call) -> bool:
    try:
        call()
    except ApiException as exc:
        return exc.status == 403
    return False


def test_the_token_may_do_nothing_else(workers, agent_api) -> None:
    me = workers[0].metadata.name
    cost = {"metadata": {"annotations": {DELETION_COST_ANNOTATION: "1"}}}
    attempts = {
        "list pods": lambda: agent_api.list_namespaced_pod(NS),
        "delete a pod": lambda: agent_api.delete_namespaced_pod(workers[1].metadata.name, NS),
        "create a pod": lambda: agent_api.create_namespaced_pod(
            NS, {"metadata": {"name": "x"}, "spec": {"containers": [{"name": "x", "image": "x"}]}}
        ),
        "patch pod status": lambda: agent_api.patch_namespaced_pod_status(me, NS, cost),
        "read secrets": lambda: agent_api.list_namespaced_secret(NS),
        "patch a pod elsewhere": lambda: agent_api.patch_namespaced_pod(me, "default", cost),
        "evict a pod": lambda: agent_api.create_namespaced_pod_eviction(
            me, NS, client.V1Eviction(metadata=client.V1ObjectMeta(name=me, namespace=NS))
        ),
    }
    allowed = [name for name, call in attempts.items() if not _forbidden(call)]
    assert allowed == []
    # Every pod is still there and running.
    for pod in workers:
        assert agent_api.read_namespaced_pod(pod.metadata.name, NS).status.phase == "Running"
