"""`ops airflow` and `ops status` through the Kubernetes exec API into a real container.

The release runs the platform image built by the containers tier. When a command is exec'd
into a scheduler pod, the API server checks RBAC and forwards the request to the node's
kubelet endpoint (cluster_kubelet_exec), which starts that pod's scheduler container with
podman from the pod's live spec (its image, command, environment from the release's Secrets,
securityContext and emptyDirs) and runs the command in it. The metadata database is a real
PostgreSQL on the podman network's gateway, migrated with `airflow db migrate`.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from cluster_kubelet_exec import PodmanPods
from cluster_node_agent import DeclaredExit
from cluster_tools import REPO, Cluster, Helm, chart_for_cluster, namespace_with_secrets
from cryptography.fernet import Fernet

from airflow_platform.image import podman
from airflow_platform.image.build import ensure_platform
from airflow_platform.local.state import StateDir
from airflow_platform.local.supervisor import Supervisor
from airflow_platform.ops.kube import Kube, Target, connect
from airflow_platform.ops.podexec import ready_pod, run_in_pod
from airflow_platform.procs import address_up, free_port, wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.containers, pytest.mark.slow]

RELEASE = NS = "exec"
VALUES = REPO / "charts" / "airflow-platform" / "ci" / "default-values.yaml"
CLI = str(Path(sys.executable).parent / "airflow-platform")


@dataclass
class Env:
    cluster: Cluster
    pods: PodmanPods
    database: str

    def ops(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [CLI, "ops", args[0], "--kubeconfig", str(self.cluster.kubeconfig),
                "-n", NS, "--release", RELEASE, *args[1:]]  # fmt: skip
        return subprocess.run(argv, capture_output=True, text=True, timeout=300)

    def kube(self) -> Kube:
        return connect(Target(self.cluster.kubeconfig, None, NS, RELEASE))

    def exec_requests(self) -> list[dict]:
        return [r for r in self.cluster.kubelet.requests if r["path"].startswith(f"/exec/{NS}/")]


@pytest.fixture(scope="module")
def network() -> Iterator[tuple[str, str, str]]:
    """A podman network (name, gateway, subnet) whose bridge stays up while the module runs."""
    try:
        _, built = ensure_platform(progress=lambda msg: print(msg, file=sys.stderr))
    except (podman.PodmanError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"exec into pods needs working podman and buildah: {exc}", pytrace=False)
    name = f"airflow-platform-exec-{secrets.token_hex(3)}"
    podman.run("network", "create", name)
    try:
        subnet = json.loads(podman.run("network", "inspect", name).stdout)[0]["subnets"][0]
        podman.run("run", "-d", "--rm", "--name", f"{name}-anchor", "--network", name,
                   "--read-only", built.tag, "sleep", "infinity")  # fmt: skip
        wait_until(lambda: address_up(subnet["gateway"]), 30, "the network's gateway", 0.2)
        yield name, subnet["gateway"], subnet["subnet"]
    finally:
        podman.run("rm", "-f", "-t", "0", f"{name}-anchor", check=False)
        podman.run("network", "rm", "-f", name, check=False)


@pytest.fixture(scope="module")
def env(
    cluster: Cluster, helm: Helm, network: tuple[str, str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Env]:  # fmt: skip
    from airflow_platform.local.postgres import start_postgres

    name, gateway, subnet = network
    # Not under pytest's 0700 tmp dirs: PostgreSQL runs as `nobody` when we are root.
    root = Path(tempfile.mkdtemp(prefix="airflow-platform-exec-"))
    root.chmod(0o755)
    sup = Supervisor(StateDir.at(root / "state"))
    url = start_postgres(sup, free_port(), secrets.token_urlsafe(16), gateway, (subnet,))
    pods = PodmanPods(cluster.core, name, {NS})
    migrations = DeclaredExit(
        {"app.kubernetes.io/instance": RELEASE, "app.kubernetes.io/component": "migrations"},
        why="the database was migrated with `airflow db migrate` before the install",
    )
    try:
        home = tmp_path_factory.mktemp("airflow-home")
        base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
        done = subprocess.run(
            [str(Path(sys.executable).parent / "airflow"), "db", "migrate"], timeout=600,
            env={**base, "AIRFLOW_HOME": str(home), "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url},
            capture_output=True, text=True,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]

        namespace_with_secrets(cluster, NS, VALUES)
        real = {
            "airflow-database": {"connection": url},
            "airflow-results": {"connection": "db+" + url.replace("+psycopg2", "")},
            "airflow-keys": {"fernet-key": Fernet.generate_key().decode()},
        }
        for secret, data in real.items():
            cluster.core.patch_namespaced_secret(secret, NS, {"stringData": data})
        chart, served = chart_for_cluster(cluster, tmp_path_factory.mktemp("exec-chart"))
        _, built = ensure_platform(progress=lambda msg: print(msg, file=sys.stderr))
        repository, tag = built.tag.rsplit(":", 1)
        cluster.agent.evaluators.insert(0, migrations)
        helm(
            "upgrade", "--install", RELEASE, str(chart), "-n", NS, "-f", str(VALUES),
            "--set", f"image.repository={repository}", "--set-string", f"image.tag={tag}",
            "--set", "workers.deletionCostAgent.enabled=false",
            "--wait", "--timeout", "10m",
            "--post-renderer", "served-apis", "--post-renderer-args", str(served),
        )  # fmt: skip
        cluster.kubelet.runtime = pods.container
        yield Env(cluster, pods, url)
    finally:
        cluster.kubelet.runtime = None
        if migrations in cluster.agent.evaluators:
            cluster.agent.evaluators.remove(migrations)
        pods.stop()
        helm("uninstall", RELEASE, "-n", NS, "--wait", "--timeout", "5m", check=False)
        sup.stop_many(list(sup.records()))
        shutil.rmtree(root, ignore_errors=True)


def test_ops_airflow_runs_the_command_in_a_scheduler_pod(env: Env) -> None:
    done = env.ops("airflow", "--", "config", "get-value", "core", "executor")
    assert done.returncode == 0, done.stderr + env.pods.logs()
    assert done.stdout.strip().splitlines()[-1] == "CeleryExecutor"
    [request] = env.exec_requests()
    scheduler = ready_pod(env.kube())
    assert request["path"] == f"/exec/{NS}/{scheduler.metadata.name}/scheduler"
    assert request["command"] == ["airflow", "config", "get-value", "core", "executor"]


def test_a_variable_set_through_ops_airflow_is_in_the_metadata_database(env: Env) -> None:
    value = secrets.token_hex(8)
    done = env.ops("airflow", "--", "variables", "set", "exec_probe", value)
    assert done.returncode == 0, done.stderr + env.pods.logs()
    got = env.ops("airflow", "--", "variables", "get", "exec_probe")
    assert got.returncode == 0 and got.stdout.strip().splitlines()[-1] == value, got.stderr
    with sa.create_engine(env.database).connect() as db:
        row = db.execute(sa.text("SELECT is_encrypted FROM variable WHERE key = 'exec_probe'"))
        assert row.scalar_one() is True  # the release's Fernet key reached the container


def test_the_exit_code_and_stderr_are_passed_through(env: Env) -> None:
    done = env.ops("airflow", "--", "variables", "get", "no_such_variable")
    assert done.returncode == 1
    assert "no_such_variable" in done.stderr


def test_a_command_off_the_allow_list_is_refused_before_any_exec(env: Env) -> None:
    before = len(env.exec_requests())
    done = env.ops("airflow", "--", "users", "list")
    assert done.returncode == 2 and "users" in done.stderr
    assert len(env.exec_requests()) == before


def test_the_container_runs_under_the_pod_s_security_context(env: Env) -> None:
    kube = env.kube()
    pod = ready_pod(kube)
    result = run_in_pod(kube, pod, ["id", "-u"], container="scheduler")
    assert (result.exit_code, result.stdout.strip()) == (0, "50000")
    wrote = run_in_pod(kube, pod, ["touch", "/opt/airflow/outside"], container="scheduler")
    assert wrote.exit_code != 0 and "Read-only file system" in wrote.stderr
    spec = next(c for c in pod.spec.containers if c.name == "scheduler")
    assert spec.security_context.read_only_root_filesystem is True


def test_ops_status_reads_the_database_view_from_the_pod(env: Env) -> None:
    def status() -> dict | None:
        done = env.ops("status", "--json")
        assert done.returncode in (0, 1), done.stderr + env.pods.logs()
        found = json.loads(done.stdout)
        return found if found["heartbeat"]["status"] == "healthy" else None

    # The exec'd container runs the pod's own command, the scheduler, which heartbeats.
    found = wait_until(status, 240, "a scheduler heartbeat in ops status", 2.0)
    assert found["import_errors"] == 0
    kinds = {tuple(r["command"][:3]) for r in env.exec_requests()}
    assert ("airflow-platform", "ops", "probe") in kinds
