"""The chart's life on a real API server, as a platform engineer drives it with helm:
install (migrations hook first), upgrade, rollback, the `helm test` pod's route, uninstall.

What this tier adapts, and why:
- The cluster is Kubernetes 1.20 (the newest control plane that builds here); the chart
  targets EKS >= 1.29. The tier installs a copy of the chart whose Chart.yaml kubeVersion is
  relaxed to >=1.20. The chart itself renders PodDisruptionBudgets and HPAs in the API
  version the cluster serves (.Capabilities: policy/v1beta1, autoscaling/v2beta2 here);
  a helm post-renderer plugin (helm-plugins/served-apis) rewrites anything that still
  names an unserved version to the older one with the same schema (batch/v1 CronJob ->
  v1beta1, ...) and the test prints what it rewrote. Nothing is dropped or turned off.
- There is no kubelet: the node agent (cluster_node_agent) runs no container. Long-running
  pods become Running/Ready once their Secrets and ConfigMaps exist (probes are not run).
  The migrations Job's exit status is declared by this test (DeclaredExit, visible in the
  pod status): `airflow db migrate` itself runs against real PostgreSQL in the e2e tier.
  The `helm test` pod runs for real in the containers tier; here the test checks the part
  Kubernetes owns: the URL it calls names this release's api-server Service and port, and
  that Service has ready endpoints.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from cluster_node_agent import ZONE_LABEL, DeclaredExit
from cluster_tools import REPO, Cluster, Helm, required_secrets
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from airflow_platform.merge import deep_merge
from airflow_platform.procs import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
STEPS = True  # one story: later steps are skipped once a step fails (see conftest)

RELEASE = "airflow"
NS = "airflow"
CHART = REPO / "charts" / "airflow-platform"
VALUES = CHART / "ci" / "eks-values.yaml"
INSTANCE = f"app.kubernetes.io/instance={RELEASE}"
# The install starts with 2 schedulers; the upgrade goes to the ci file's 3, a new image
# tag and a changed Airflow option.
INSTALL_ARGS = ("--set", "scheduler.replicas=2")
UPGRADE_ARGS = (
    "--set", "scheduler.replicas=3",
    "--set", "image.tag=0.1.1",
    "--set-string", r"airflowConfigurationOptions.core\.parallelism=128",
)  # fmt: skip
REVISION = "deployment.kubernetes.io/revision"
# Kubernetes 1.20 serves no ValidatingAdmissionPolicy, so the chart refuses the worker agent
# (its Role would go unconfined), as it would on any cluster older than 1.30. The agent's
# permissions are exercised on this cluster by test_cluster_deletion_cost.py.
CLUSTER_ARGS = ("--set", "workers.deletionCostAgent.enabled=false")


@dataclass
class Timeline:
    """Jobs and Deployments seen during the install, by etcd revision: resourceVersions of
    one etcd are its global revision, so they order events across kinds exactly."""

    job_completed: dict[str, int] = field(default_factory=dict)
    deployment_created: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self, cluster: Cluster) -> Timeline:
        batch, apps = client.BatchV1Api(cluster.api), cluster.apps

        def follow(list_fn, record) -> None:
            version = list_fn(NS).metadata.resource_version
            while not self._stop.is_set():
                stream = watch.Watch()
                try:
                    for event in stream.stream(
                        list_fn, NS, resource_version=version, timeout_seconds=2
                    ):
                        version = event["object"].metadata.resource_version
                        record(event)
                except ApiException:
                    version = list_fn(NS).metadata.resource_version

        def on_job(event) -> None:
            job = event["object"]
            done = any(
                c.type == "Complete" and c.status == "True" for c in job.status.conditions or []
            )
            if done and job.metadata.name not in self.job_completed:
                self.job_completed[job.metadata.name] = int(job.metadata.resource_version)

        def on_deployment(event) -> None:
            deployment = event["object"]
            if event["type"] == "ADDED":
                name = deployment.metadata.name
                self.deployment_created.setdefault(name, int(deployment.metadata.resource_version))

        for list_fn, record in (
            (batch.list_namespaced_job, on_job),
            (apps.list_namespaced_deployment, on_deployment),
        ):
            thread = threading.Thread(target=follow, args=(list_fn, record), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)


@dataclass
class Release:
    cluster: Cluster
    helm: Helm
    chart: Path
    served: Path
    history: dict[str, dict[str, str]] = field(default_factory=dict)  # step -> deploy -> hash

    def _args(self, extra: tuple[str, ...]) -> list[str]:
        return [RELEASE, str(self.chart), "-n", NS, "-f", str(VALUES), *CLUSTER_ARGS, *extra]

    def upgrade(self, *extra: str) -> str:
        return self.helm(
            "upgrade", "--install", *self._args(extra), "--wait", "--timeout", "10m",
            "--post-renderer", "served-apis", "--post-renderer-args", str(self.served),
        ).stdout  # fmt: skip

    def rendered_templates(self, *extra: str) -> dict[str, dict]:
        """Each Deployment's pod template as helm renders it for these values."""
        out = self.helm("template", *self._args(extra)).stdout
        return {
            d["metadata"]["name"]: d["spec"]["template"]
            for d in yaml.safe_load_all(out)
            if d and d.get("kind") == "Deployment"
        }

    def deployments(self) -> list[client.V1Deployment]:
        return self.cluster.apps.list_namespaced_deployment(NS, label_selector=INSTANCE).items

    def template_hashes(self) -> dict[str, str]:
        """Deployment -> pod-template-hash of its current ReplicaSet."""
        hashes = {}
        sets = self.cluster.apps.list_namespaced_replica_set(NS, label_selector=INSTANCE).items
        for deployment in self.deployments():
            revision = deployment.metadata.annotations[REVISION]
            current = [
                rs
                for rs in sets
                if rs.metadata.annotations.get(REVISION) == revision
                and any(o.uid == deployment.metadata.uid for o in rs.metadata.owner_references)
            ]
            assert len(current) == 1, f"{deployment.metadata.name}: {len(current)} current RS"
            hashes[deployment.metadata.name] = current[0].metadata.labels["pod-template-hash"]
        return hashes

    def all_ready(self) -> bool:
        return all(
            (d.status.observed_generation or 0) >= d.metadata.generation
            and (d.status.updated_replicas or 0) == d.spec.replicas
            and (d.status.available_replicas or 0) == d.spec.replicas
            and (d.status.replicas or 0) == d.spec.replicas
            for d in self.deployments()
        )

    def scheduler_zones(self) -> list[str]:
        pods = self.cluster.core.list_namespaced_pod(
            NS, label_selector=f"{INSTANCE},app.kubernetes.io/component=scheduler"
        ).items
        zones = {n.metadata.name: n.metadata.labels[ZONE_LABEL]
                 for n in self.cluster.core.list_node().items}  # fmt: skip
        return sorted(zones[p.spec.node_name] for p in pods if not p.metadata.deletion_timestamp)


@pytest.fixture(scope="module")
def release(
    cluster: Cluster, helm: Helm, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Release]:
    if not VALUES.exists():
        pytest.fail(f"{VALUES} is missing: the tier installs the chart with it")
    work = tmp_path_factory.mktemp("chart")
    chart = work / "airflow-platform"
    shutil.copytree(CHART, chart)
    chart_yaml = chart / "Chart.yaml"
    text = chart_yaml.read_text()
    assert re.search(r"^kubeVersion:", text, re.M), "Chart.yaml declares no kubeVersion"
    chart_yaml.write_text(re.sub(r"^kubeVersion:.*$", 'kubeVersion: ">=1.20.0-0"', text,
                                 flags=re.M))  # fmt: skip

    served = work / "served-api-versions.txt"
    served.write_text(cluster.kubectl("api-versions").stdout)

    try:
        cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
    except ApiException as exc:
        if exc.status != 409:
            raise
    values = deep_merge(
        yaml.safe_load((CHART / "values.yaml").read_text()), yaml.safe_load(VALUES.read_text())
    )
    for name, keys in required_secrets(values).items():
        data = {k: secrets.token_urlsafe(24) for k in keys}
        if values["database"]["existingSecret"] == name:
            data[values["database"]["secretKey"]] = (
                "postgresql://airflow:secret@aurora.cluster.example:5432/airflow?sslmode=require"
            )
        cluster.core.create_namespaced_secret(
            NS, client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data=data)
        )

    migrations = DeclaredExit(
        {"app.kubernetes.io/instance": RELEASE, "app.kubernetes.io/component": "migrations"},
        why="`airflow db migrate` runs against real PostgreSQL in the e2e tier",
    )
    cluster.agent.evaluators.insert(0, migrations)
    yield Release(cluster, helm, chart, served)
    cluster.agent.evaluators.remove(migrations)


def test_install_runs_migrations_first_then_every_workload_becomes_ready(
    release: Release,
) -> None:
    timeline = Timeline().start(release.cluster)
    try:
        release.upgrade(*INSTALL_ARGS)
    finally:
        timeline.stop()

    assert release.all_ready(), "helm --wait returned before every Deployment was ready"
    migrations = [name for name in timeline.job_completed if "migrations" in name]
    assert migrations, f"no migrations Job completed during the install: {timeline}"
    deployments = {d.metadata.name for d in release.deployments()}
    assert deployments == set(timeline.deployment_created), timeline
    first_workload = min(timeline.deployment_created.values())
    assert timeline.job_completed[migrations[0]] < first_workload, (
        "a Deployment was created before the migrations Job completed"
    )

    # The real kube-scheduler applied the chart's zone spread: one scheduler per zone.
    assert release.scheduler_zones() == ["us-east-1a", "us-east-1b"]

    # The chart picks the PDB/HPA API versions the cluster serves (.Capabilities); the
    # post-renderer rewrites whatever still names an unserved version. Show what it did.
    rewrites = (
        release.helm.rewrites.read_text().splitlines() if release.helm.rewrites.exists() else []
    )
    print("post-render rewrites for Kubernetes 1.20:", sorted(set(rewrites)) or "none")
    pdbs = json.loads(
        release.cluster.kubectl("get", "pdb", "-n", NS, "-l", INSTANCE, "-o", "json").stdout
    )["items"]
    components = {p["metadata"]["labels"]["app.kubernetes.io/component"] for p in pdbs}
    assert {"scheduler", "api-server"} <= components, components

    release.history["install"] = release.template_hashes()


def test_upgrade_rolls_exactly_the_workloads_whose_pods_changed(release: Release) -> None:
    before_templates = release.rendered_templates(*INSTALL_ARGS)
    after_templates = release.rendered_templates(*UPGRADE_ARGS)
    expected_to_roll = {n for n in after_templates if after_templates[n] != before_templates[n]}
    assert expected_to_roll, "the upgrade changes no pod template: the test proves nothing"

    release.upgrade(*UPGRADE_ARGS)  # an immutable-field error would fail here
    assert release.all_ready()
    hashes = release.template_hashes()
    before = release.history["install"]
    rolled = {name for name in hashes if hashes[name] != before.get(name)}
    assert rolled == expected_to_roll
    print("rolled by the upgrade:", sorted(rolled))

    # The new option and image reached every Airflow container of the rolled workloads.
    for deployment in release.deployments():
        if deployment.metadata.name not in rolled:
            continue
        for container in deployment.spec.template.spec.containers:
            env = {e.name: e.value for e in container.env or []}
            # An Airflow component, not a sidecar nor the worker's log server (it serves files).
            if "AIRFLOW_HOME" in env and container.name != "log-server":
                assert env.get("AIRFLOW__CORE__PARALLELISM") == "128", container.name
                assert container.image.endswith(":0.1.1"), container.image

    scheduler = next(
        d
        for d in release.deployments()
        if d.metadata.labels["app.kubernetes.io/component"] == "scheduler"
    )
    assert scheduler.spec.replicas == 3
    assert scheduler.spec.template.spec.containers[0].image.endswith(":0.1.1")
    zones = release.scheduler_zones()
    assert len(zones) == 3 and set(zones) == {"us-east-1a", "us-east-1b"}
    release.history["upgrade"] = hashes


def test_rollback_returns_to_the_installed_revision(release: Release) -> None:
    release.helm("rollback", RELEASE, "1", "-n", NS, "--wait", "--timeout", "10m")
    history = yaml.safe_load(release.helm("history", RELEASE, "-n", NS, "-o", "yaml").stdout)
    assert [h["revision"] for h in history] == [1, 2, 3]
    assert history[-1]["status"] == "deployed"
    assert "Rollback to 1" in history[-1]["description"]

    wait_until(release.all_ready, 300, "every Deployment ready after the rollback", interval=1)
    # Identical pod templates: each Deployment is back on its first ReplicaSet.
    assert release.template_hashes() == release.history["install"]
    assert len(release.scheduler_zones()) == 2


def test_the_helm_test_pod_calls_a_service_of_this_release_with_ready_endpoints(
    release: Release,
) -> None:
    hooks = yaml.safe_load_all(release.helm("get", "hooks", RELEASE, "-n", NS).stdout)
    test_pods = [
        d for d in hooks
        if d and d["kind"] == "Pod"
        and d["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"
    ]  # fmt: skip
    assert len(test_pods) == 1, test_pods
    words = [
        w
        for c in test_pods[0]["spec"]["containers"]
        for w in c.get("command", []) + c.get("args", [])
    ]
    urls = [m for w in words for m in re.finditer(r"https?://([a-z0-9.-]+):(\d+)", w)]
    assert urls, f"the helm test pod calls no URL: {words}"
    for url in urls:
        host, port = url.group(1), int(url.group(2))
        name, _, rest = host.partition(".")
        assert rest in ("", NS, f"{NS}.svc", f"{NS}.svc.cluster.local"), url.group(0)
        service = release.cluster.core.read_namespaced_service(name, NS)
        svc_port = next((p for p in service.spec.ports if p.port == port), None)
        assert svc_port is not None, f"{url.group(0)}: Service {name} has no port {port}"
        endpoints = release.cluster.core.read_namespaced_endpoints(name, NS)
        ready = [
            a.ip
            for subset in endpoints.subsets or []
            if any(p.name == svc_port.name for p in subset.ports or [])
            for a in subset.addresses or []
        ]
        assert ready, f"{url.group(0)}: Service {name} has no ready endpoint"


def test_uninstall_leaves_nothing_of_ours(release: Release) -> None:
    release.helm("uninstall", RELEASE, "-n", NS, "--wait", "--timeout", "5m")
    kinds = release.cluster.kubectl(
        "api-resources", "--verbs=list,delete", "--namespaced", "-o", "name"
    ).stdout.split()
    kinds = [k for k in kinds if k not in ("events", "events.events.k8s.io")]

    def remaining(resources: list[str]) -> list[str]:
        return release.cluster.kubectl(
            "get", ",".join(resources), "-n", NS, "-l", INSTANCE, "-o", "name"
        ).stdout.split()

    # Controllers remove these after their owners are gone: give the garbage collector time.
    collected = ["pods", "replicasets.apps", "endpoints", "endpointslices.discovery.k8s.io"]
    try:
        wait_until(lambda: not remaining(collected), 180, "owned objects to be collected",
                   interval=1)  # fmt: skip
    except TimeoutError:
        pytest.fail(f"not garbage-collected after helm uninstall: {remaining(collected)}")
    # Everything helm created must be gone once `helm uninstall --wait` returns.
    left = remaining([k for k in kinds if k not in collected])
    left += release.cluster.kubectl(
        "get", "secrets", "-n", NS, "-l", f"owner=helm,name={RELEASE}", "-o", "name"
    ).stdout.split()
    assert not left, f"left behind after helm uninstall: {left}"
