"""`airflow-platform ops` against a real API server: status from the Helm release and the
workloads, hibernate/resume, and the errors a platform engineer gets for a wrong
kubeconfig, context, namespace or release.

Here the node agent runs no container, so `ops status` runs with --no-db-view (no exec) and
`ops airflow` is exercised up to its refusal when no scheduler pod is ready. The database
view and the Airflow CLI through the exec API, in a real container of the release's scheduler
pod, are in test_cluster_exec.py."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
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

from airflow_platform.ops import hibernation
from airflow_platform.ops.kube import Kube, Target
from airflow_platform.procs import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
STEPS = True

RELEASE = "ops"
NS = "ops"
CHART = REPO / "charts" / "airflow-platform"
VALUES = CHART / "ci" / "eks-values.yaml"
CLI = str(Path(sys.executable).parent / "airflow-platform")
HIBERNATED = "airflow-platform.io/hibernated-replicas"
KEDA_PAUSED = "autoscaling.keda.sh/paused-replicas"
FIGURES: dict[str, float] = {}


@dataclass
class Env:
    cluster: Cluster
    helm: Helm
    chart: Path
    served: Path

    def upgrade(self, *extra: str) -> None:
        self.helm(
            "upgrade", "--install", RELEASE, str(self.chart), "-n", NS, "-f", str(VALUES),
            # Kubernetes 1.20 has no ValidatingAdmissionPolicy: the agent is off (helm refuses it).
            "--set", "workers.deletionCostAgent.enabled=false",
            *extra, "--wait", "--timeout", "10m",
            "--post-renderer", "served-apis", "--post-renderer-args", str(self.served),
        )  # fmt: skip

    def ops(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CLI, "ops", args[0], "--kubeconfig", str(self.cluster.kubeconfig), *args[1:]],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    def status(self) -> dict:
        done = self.ops("status", "-n", NS, "--release", RELEASE, "--no-db-view", "--json")
        assert done.returncode in (0, 1), done.stderr
        return json.loads(done.stdout)

    def deployments(self) -> list[client.V1Deployment]:
        return self.cluster.apps.list_namespaced_deployment(
            NS, label_selector=f"app.kubernetes.io/instance={RELEASE}"
        ).items

    def scaled_object(self) -> dict:
        objects = client.CustomObjectsApi(self.cluster.api).list_namespaced_custom_object(
            "keda.sh", "v1alpha1", NS, "scaledobjects"
        )["items"]
        assert len(objects) == 1
        return objects[0]

    def all_ready(self) -> bool:
        return all(
            (d.status.observed_generation or 0) >= d.metadata.generation
            and (d.status.ready_replicas or 0) == d.spec.replicas
            and (d.status.replicas or 0) == d.spec.replicas
            for d in self.deployments()
        )


@pytest.fixture(scope="module")
def env(cluster: Cluster, helm: Helm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    work = tmp_path_factory.mktemp("ops-chart")
    chart, served = chart_for_cluster(cluster, work)
    namespace_with_secrets(cluster, NS, VALUES)
    migrations = DeclaredExit(
        {"app.kubernetes.io/instance": RELEASE, "app.kubernetes.io/component": "migrations"},
        why="`airflow db migrate` runs against real PostgreSQL in the e2e tier",
    )
    cluster.agent.evaluators.insert(0, migrations)
    handle = Env(cluster, helm, chart, served)
    handle.upgrade()
    yield handle
    cluster.agent.evaluators.remove(migrations)
    helm("uninstall", RELEASE, "-n", NS, "--wait", "--timeout", "5m", check=False)


def test_status_reports_the_release_and_every_component(env: Env) -> None:
    began = time.monotonic()
    found = env.status()
    FIGURES["ops status on the cluster tier (s)"] = time.monotonic() - began
    assert found["status"] == "AVAILABLE", found
    assert (found["revision"], found["release_status"], found["source"]) == ("1", "deployed",
                                                                             "cluster")  # fmt: skip
    assert found["environment"] == yaml.safe_load(VALUES.read_text())["environmentName"]
    components = {c["name"]: c for c in found["components"]}
    assert set(components) == {
        "scheduler",
        "dag-processor",
        "triggerer",
        "api-server",
        "execution-api",
        "worker",
    }
    assert components["scheduler"]["desired"] == 3  # ci/eks-values.yaml
    assert all(c["ready"] == c["desired"] for c in components.values()), components
    assert found["workers"] == {"current": components["worker"]["ready"], "minimum": 2,
                                "maximum": 20, "scaler": "keda", "paused": False}  # fmt: skip
    assert found["heartbeat"]["status"] == "unknown"  # --no-db-view

    table = env.ops("status", "-n", NS, "--release", RELEASE, "--no-db-view")
    assert table.returncode == 0 and "AVAILABLE" in table.stdout and "scheduler" in table.stdout


def test_status_names_what_is_wrong_in_the_target(env: Env, tmp_path: Path) -> None:
    cases = {
        ("--context", "prod-eu"): "--context 'prod-eu' is not in the kubeconfig",
        ("--release", "nope", "-n", NS): "no Helm release 'nope' in namespace 'ops'",
        ("-n", "no-such-namespace"): "Check --namespace",
    }
    for args, message in cases.items():
        done = env.ops("status", *args, "--no-db-view")
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert message in " ".join(done.stderr.split()), (args, done.stderr)
    missing = subprocess.run([CLI, "ops", "status", "--kubeconfig", str(tmp_path / "none")],
                             capture_output=True, text=True)  # fmt: skip
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_an_upgrade_shows_as_a_new_revision(env: Env) -> None:
    env.upgrade("--set", "scheduler.replicas=2")
    found = env.status()
    assert found["revision"] == "2" and found["status"] == "AVAILABLE"
    assert {c["name"]: c["desired"] for c in found["components"]}["scheduler"] == 2


def test_hibernate_scales_to_zero_and_pauses_keda(env: Env) -> None:
    before = {d.metadata.name: d.spec.replicas for d in env.deployments()}
    assert all(before.values())
    began = time.monotonic()
    done = env.ops("hibernate", "-n", NS, "--release", RELEASE)
    assert done.returncode == 0, done.stderr
    wait_until(
        lambda: not env.cluster.core.list_namespaced_pod(
            NS, label_selector=f"app.kubernetes.io/instance={RELEASE}"
        ).items,
        120, "every pod of the release gone", interval=0.5,
    )  # fmt: skip
    FIGURES["hibernate to no pods (s)"] = time.monotonic() - began
    after = {d.metadata.name: d for d in env.deployments()}
    assert {n: d.spec.replicas for n, d in after.items()} == dict.fromkeys(before, 0)
    assert {n: int(d.metadata.annotations[HIBERNATED]) for n, d in after.items()} == before
    assert env.scaled_object()["metadata"]["annotations"][KEDA_PAUSED] == "0"

    found = env.status()
    assert found["status"] == "HIBERNATED" and found["workers"]["paused"] is True

    again = env.ops("hibernate", "-n", NS, "--release", RELEASE)
    assert again.returncode == 2 and "already hibernated" in again.stderr

    # No scheduler pod to run a command in: refused before any exec.
    cli = env.ops("airflow", "-n", NS, "--release", RELEASE, "--", "dags", "list")
    assert cli.returncode == 2 and "no ready scheduler pod" in cli.stderr
    assert "ops resume" in cli.stderr
    env.before_hibernation = before  # type: ignore[attr-defined]


def test_resume_restores_the_replica_counts(env: Env) -> None:
    before = env.before_hibernation  # type: ignore[attr-defined]
    began = time.monotonic()
    done = env.ops("resume", "-n", NS, "--release", RELEASE)
    assert done.returncode == 0, done.stderr
    wait_until(env.all_ready, 180, "every Deployment ready after resume", interval=0.5)
    FIGURES["resume to all ready (s)"] = time.monotonic() - began
    after = {d.metadata.name: d for d in env.deployments()}
    assert {n: d.spec.replicas for n, d in after.items()} == before
    assert not any(HIBERNATED in (d.metadata.annotations or {}) for d in after.values())
    assert KEDA_PAUSED not in (env.scaled_object()["metadata"].get("annotations") or {})
    assert env.status()["status"] == "AVAILABLE"


def test_resuming_an_environment_that_is_not_hibernated_changes_nothing(env: Env) -> None:
    versions = {d.metadata.name: d.metadata.resource_version for d in env.deployments()}
    done = env.ops("resume", "-n", NS, "--release", RELEASE)
    assert done.returncode == 2
    assert "is not hibernated: nothing to resume" in " ".join(done.stderr.split())
    assert {d.metadata.name: d.metadata.resource_version for d in env.deployments()} == versions


def test_after_resume_helm_owns_the_replica_counts_again(env: Env) -> None:
    # Helm 4 applies server-side: a field another manager still owned would conflict.
    env.upgrade("--set", "scheduler.replicas=3")
    wait_until(env.all_ready, 180, "every Deployment ready after the upgrade", interval=0.5)
    replicas = {d.metadata.labels["app.kubernetes.io/component"]: d.spec.replicas
                for d in env.deployments()}  # fmt: skip
    assert replicas["scheduler"] == 3


def test_the_hibernate_value_hibernates_through_helm(env: Env) -> None:
    # The value takes spec.replicas from whoever set it last (the HPA, KEDA, ops): with
    # Helm 4's server-side apply that is a forced apply.
    env.upgrade("--set", "scheduler.replicas=2", "--set", "hibernate=true", "--force-conflicts")
    assert all(d.spec.replicas == 0 for d in env.deployments())
    assert env.scaled_object()["metadata"]["annotations"][KEDA_PAUSED] == "0"
    assert env.status()["status"] == "HIBERNATED"
    refused = env.ops("resume", "-n", NS, "--release", RELEASE)
    assert refused.returncode == 2 and "hibernate: false" in refused.stderr

    env.upgrade("--set", "scheduler.replicas=2", "--set", "hibernate=false", "--force-conflicts")
    wait_until(env.all_ready, 180, "every Deployment ready after hibernate=false", interval=0.5)
    replicas = {d.metadata.labels["app.kubernetes.io/component"]: d.spec.replicas
                for d in env.deployments()}  # fmt: skip
    assert replicas["scheduler"] == 2 and all(replicas.values()), replicas
    assert env.status()["status"] == "AVAILABLE"


def test_resume_reads_again_when_the_fields_moved_under_it(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    # After a scale the controllers write the status, which can move the managedFields
    # entries between resume's read and its guarded JSON patch: the API server refuses the
    # patch (422) and resume must read again rather than fail.
    name = env.deployments()[0].metadata.name
    env.cluster.apps.patch_namespaced_deployment(
        name, NS, {"metadata": {"annotations": {"ops-test": "1"}}},
        field_manager=hibernation.FIELD_MANAGER,
    )  # fmt: skip
    real_read = client.AppsV1Api.read_namespaced_deployment
    reads: list[int] = []

    def stale_once(self: client.AppsV1Api, *args: object, **kwargs: object) -> object:
        found = real_read(self, *args, **kwargs)
        reads.append(1)
        if len(reads) == 1:  # another manager's entry appeared in front of ours
            found.metadata.managed_fields.insert(
                0, client.V1ManagedFieldsEntry(manager="kube-controller-manager")
            )
        return found

    monkeypatch.setattr(client.AppsV1Api, "read_namespaced_deployment", stale_once)
    kube = Kube(Target(env.cluster.kubeconfig, None, NS, RELEASE), env.cluster.api)
    hibernation._release_fields(kube, name)
    monkeypatch.undo()
    assert len(reads) == 2
    managers = {e.manager for e in env.cluster.apps.read_namespaced_deployment(
        name, NS).metadata.managed_fields}  # fmt: skip
    assert hibernation.FIELD_MANAGER not in managers and managers


def test_print_figures() -> None:
    print("\nops figures (cluster tier):", json.dumps(FIGURES, indent=1))
