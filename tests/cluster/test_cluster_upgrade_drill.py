"""The failing-upgrade drill of docs/runbook.md on a real API server: an upgrade whose
migrations Job fails makes `helm upgrade --wait` fail, `ops status` reports UPDATE_FAILED,
`helm rollback` brings the release back, and it is AVAILABLE again with its data intact
(values, revision history, the chart's ConfigMaps and Secrets, and objects of the user's).

How the migrations fail here: there is no container runtime, so the node agent decides
run-to-completion pods through evaluators (see cluster_node_agent). The drill's upgrade
labels the migrations pod with `airflow-platform.io/drill: fail-migrations` (the chart's
`migrations.podLabels`), and a DeclaredExit for that label reports the pod Failed with exit
code 1; the same release's migrations without the label are declared successful. Helm, the
Job controller, the hook and the rollback are the real ones. `airflow db migrate` failing for
real is the e2e tier's concern, not this drill's."""

from __future__ import annotations

import json
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cluster_node_agent import DeclaredExit
from cluster_tools import REPO, Cluster, Helm, chart_for_cluster, namespace_with_secrets
from kubernetes import client

from airflow_platform.procs import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
STEPS = True  # one story: later steps are skipped once a step fails (see conftest)

RELEASE = "drill"
NS = "drill"
CHART = REPO / "charts" / "airflow-platform"
VALUES = CHART / "ci" / "eks-values.yaml"
CLI = str(Path(sys.executable).parent / "airflow-platform")
INSTANCE = f"app.kubernetes.io/instance={RELEASE}"
DRILL_LABEL = "airflow-platform.io/drill"
# Kubernetes 1.20 has no ValidatingAdmissionPolicy: the chart refuses the agent there.
CLUSTER_ARGS = ("--set", "workers.deletionCostAgent.enabled=false")
# The failing upgrade changes what a real one changes (image, replicas, an Airflow option),
# retries the Job once, and marks its migrations pod for the failing evaluator.
FAILING_UPGRADE = (
    "--set", "scheduler.replicas=2",
    "--set", "image.tag=0.1.1",
    "--set-string", r"airflowConfigurationOptions.core\.parallelism=128",
    "--set", "migrations.backoffLimit=1",
    "--set", r"migrations.podLabels.airflow-platform\.io/drill=fail-migrations",
)  # fmt: skip
USER_CONFIGMAP = "team-settings"
USER_SECRET = "team-credentials"
FIGURES: dict[str, object] = {}


@dataclass
class Drill:
    cluster: Cluster
    helm: Helm
    chart: Path
    served: Path

    def upgrade(self, *extra: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.helm(
            "upgrade", "--install", RELEASE, str(self.chart), "-n", NS, "-f", str(VALUES),
            *CLUSTER_ARGS, *extra, "--wait", "--timeout", "5m",
            "--post-renderer", "served-apis", "--post-renderer-args", str(self.served),
            check=check,
        )  # fmt: skip

    def ops_status(self) -> tuple[int, dict]:
        done = subprocess.run(
            [CLI, "ops", "status", "--kubeconfig", str(self.cluster.kubeconfig), "-n", NS,
             "--release", RELEASE, "--no-db-view", "--json"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode in (0, 1), done.stderr
        return done.returncode, json.loads(done.stdout)

    def history(self) -> list[dict]:
        return json.loads(self.helm("history", RELEASE, "-n", NS, "-o", "json").stdout)

    def values(self, revision: int | None = None) -> dict:
        args = ["get", "values", RELEASE, "-n", NS, "-o", "json"]
        if revision is not None:
            args += ["--revision", str(revision)]
        return json.loads(self.helm(*args).stdout)

    def deployments(self) -> list[client.V1Deployment]:
        return self.cluster.apps.list_namespaced_deployment(NS, label_selector=INSTANCE).items

    def all_ready(self) -> bool:
        return all(
            (d.status.observed_generation or 0) >= d.metadata.generation
            and (d.status.ready_replicas or 0) == d.spec.replicas
            and (d.status.updated_replicas or 0) == d.spec.replicas
            and (d.status.replicas or 0) == d.spec.replicas
            for d in self.deployments()
        )

    def data(self) -> dict[str, dict]:
        """Every ConfigMap and Secret in the namespace (the chart's and the user's), by name,
        without the ones Kubernetes and Helm maintain themselves."""
        core = self.cluster.core
        found: dict[str, dict] = {}
        for cm in core.list_namespaced_config_map(NS).items:
            if cm.metadata.name != "kube-root-ca.crt":
                found[f"configmap/{cm.metadata.name}"] = dict(cm.data or {})
        for secret in core.list_namespaced_secret(NS).items:
            if secret.type in ("helm.sh/release.v1", "kubernetes.io/service-account-token"):
                continue
            found[f"secret/{secret.metadata.name}"] = dict(secret.data or {})
        return found

    def shape(self) -> dict[str, tuple[str, dict[str, str]]]:
        """Each Deployment's image and pod-template annotations (the configuration checksums):
        what the failing upgrade would have changed. Not replicas: the API server's HPA owns
        its count and may move it at any time."""
        return {
            d.metadata.name: (
                d.spec.template.spec.containers[0].image,
                dict(d.spec.template.metadata.annotations or {}),
            )
            for d in self.deployments()
        }


@pytest.fixture(scope="module")
def drill(
    cluster: Cluster, helm: Helm, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Drill]:
    chart, served = chart_for_cluster(cluster, tmp_path_factory.mktemp("drill-chart"))
    namespace_with_secrets(cluster, NS, VALUES)
    # Objects of the user's next to the release: a rollback must not touch them.
    user_meta = client.V1ObjectMeta
    cluster.core.create_namespaced_config_map(
        NS, client.V1ConfigMap(metadata=user_meta(name=USER_CONFIGMAP), data={"owner": "data"})
    )
    cluster.core.create_namespaced_secret(
        NS, client.V1Secret(metadata=user_meta(name=USER_SECRET),
                            string_data={"token": secrets.token_urlsafe(24)}),
    )  # fmt: skip
    selector = {"app.kubernetes.io/instance": RELEASE, "app.kubernetes.io/component": "migrations"}
    failing = DeclaredExit(
        {**selector, DRILL_LABEL: "fail-migrations"},
        why="the drill's upgrade marks its migrations to fail",
        exit_code=1,
    )
    passing = DeclaredExit(
        selector, why="`airflow db migrate` runs against real PostgreSQL in the e2e tier"
    )
    cluster.agent.evaluators[:0] = [failing, passing]  # the more specific one first
    yield Drill(cluster, helm, chart, served)
    cluster.agent.evaluators.remove(failing)
    cluster.agent.evaluators.remove(passing)
    helm("uninstall", RELEASE, "-n", NS, "--wait", "--timeout", "5m", check=False)


def test_install_is_available(drill: Drill) -> None:
    drill.upgrade()
    code, found = drill.ops_status()
    assert (code, found["status"], found["revision"]) == (0, "AVAILABLE", "1"), found
    drill.before = {  # type: ignore[attr-defined]
        "values": drill.values(),
        "data": drill.data(),
        "shape": drill.shape(),
    }
    assert f"configmap/{USER_CONFIGMAP}" in drill.before["data"]  # type: ignore[attr-defined]
    assert any(k.startswith("configmap/drill-") for k in drill.before["data"])  # type: ignore[attr-defined]


def test_ops_status_time(drill: Drill) -> None:
    """The closing note's figure: three runs of `ops status` (the CLI process, end to end)."""
    runs = []
    for _ in range(3):
        began = time.monotonic()
        code, found = drill.ops_status()
        runs.append(time.monotonic() - began)
        assert (code, found["status"]) == (0, "AVAILABLE"), found
    FIGURES["ops status --no-db-view, cluster tier (s)"] = {
        "median": round(statistics.median(runs), 2),
        "runs": [round(r, 2) for r in runs],
    }


def test_an_upgrade_whose_migrations_fail_fails_and_changes_no_workload(drill: Drill) -> None:
    began = time.monotonic()
    done = drill.upgrade(*FAILING_UPGRADE, check=False)
    FIGURES["failing upgrade until helm gives up (s)"] = round(time.monotonic() - began, 1)
    assert done.returncode != 0, done.stdout
    assert "migrations" in done.stderr and "failed" in done.stderr.lower(), done.stderr

    latest = drill.history()[-1]
    assert (latest["revision"], latest["status"]) == (2, "failed"), latest
    # The failed hook Job stays for the operator to read.
    jobs = client.BatchV1Api(drill.cluster.api).list_namespaced_job(NS, label_selector=INSTANCE)
    jobs = jobs.items
    assert [j.status.failed for j in jobs] == [2], [j.status for j in jobs]  # backoffLimit 1
    pods = drill.cluster.core.list_namespaced_pod(
        NS, label_selector=f"{INSTANCE},{DRILL_LABEL}=fail-migrations"
    ).items
    assert pods and all(p.status.phase == "Failed" for p in pods)
    assert all("declared by the test" in (p.status.message or "") for p in pods)

    code, found = drill.ops_status()
    assert (code, found["status"], found["revision"]) == (1, "UPDATE_FAILED", "2"), found
    assert "failed" in found["migrations"], found["migrations"]
    # The hook runs before anything is applied: the workloads are still revision 1's.
    assert drill.shape() == drill.before["shape"]  # type: ignore[attr-defined]


def test_rollback_brings_the_release_back_with_its_data(drill: Drill) -> None:
    began = time.monotonic()
    drill.helm("rollback", RELEASE, "1", "-n", NS, "--wait", "--timeout", "5m")
    wait_until(drill.all_ready, 180, "every Deployment ready after the rollback", interval=0.5)
    FIGURES["rollback to all ready (s)"] = round(time.monotonic() - began, 1)

    history = [(h["revision"], h["status"]) for h in drill.history()]
    assert history == [(1, "superseded"), (2, "failed"), (3, "deployed")], history
    assert "Rollback to 1" in drill.history()[-1]["description"]
    code, found = drill.ops_status()
    assert (code, found["status"], found["revision"]) == (0, "AVAILABLE", "3"), found

    before = drill.before  # type: ignore[attr-defined]
    assert drill.values() == before["values"] == drill.values(revision=1)
    assert drill.shape() == before["shape"]
    after = drill.data()
    assert after == before["data"], {
        k: (before["data"].get(k), after.get(k))
        for k in before["data"].keys() | after.keys()
        if before["data"].get(k) != after.get(k)
    }


def test_the_next_upgrade_after_the_rollback_succeeds(drill: Drill) -> None:
    # The failed Job is replaced (hook-delete-policy before-hook-creation), not in the way.
    drill.upgrade("--set", "scheduler.replicas=2")
    wait_until(drill.all_ready, 180, "every Deployment ready after the upgrade", interval=0.5)
    code, found = drill.ops_status()
    assert (code, found["status"], found["revision"]) == (0, "AVAILABLE", "4"), found
    assert {c["name"]: c["desired"] for c in found["components"]}["scheduler"] == 2


def test_print_figures() -> None:
    print("\nupgrade drill figures (cluster tier):", json.dumps(FIGURES, indent=1))
