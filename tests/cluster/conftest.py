"""Fixtures of the cluster tier: a real Kubernetes 1.20 control plane on 127.0.0.1 (etcd,
kube-apiserver, kube-controller-manager, kube-scheduler), four nodes in two zones driven by
the node agent, the CRDs our manifests use, and kubectl/helm pointed at it.

The control plane is shared by the whole tier and stopped, by PID, right after the tier's
last test; the tier prints its own duration at the end of the run."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cluster_binaries import KUBE_VERSION, cache_dir, ensure_binaries
from cluster_control_plane import ControlPlane
from cluster_kubelet_exec import KubeletExec
from cluster_node_agent import ZONE_LABEL, NodeAgent
from cluster_tools import Cluster, Helm, Kubectl
from kubernetes import client, config

from airflow_platform.procs import wait_until

HERE = Path(__file__).resolve().parent
CRDS = HERE / "crds"


@dataclass
class TierClock:
    """Durations of the tier, printed in the terminal summary."""

    started: float | None = None
    finished: float | None = None
    build_seconds: float | None = None
    control_plane_seconds: float | None = None
    closers: list = field(default_factory=list)

    def begin(self) -> None:
        if self.started is None:
            self.started = time.monotonic()

    def end(self) -> None:
        """Stop what the tier started (newest first) and stop the clock."""
        while self.closers:
            self.closers.pop()()
        if self.started is not None and self.finished is None:
            self.finished = time.monotonic()


TIER = TierClock()


def _in_tier(item: pytest.Item | None) -> bool:
    return item is not None and HERE in Path(str(item.path)).parents


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):
    yield
    # Free the control plane as soon as the tier is done instead of at the end of the session.
    if _in_tier(item) and not _in_tier(nextitem):
        TIER.end()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    # Modules declaring STEPS = True are one story told in order: remember the first failure.
    if getattr(item.module, "STEPS", False) and report.failed:
        item.module.__dict__.setdefault("_failed_step", item.name)


def pytest_runtest_setup(item: pytest.Item) -> None:
    failed = getattr(item.module, "_failed_step", None)
    if getattr(item.module, "STEPS", False) and failed:
        pytest.skip(f"an earlier step failed: {failed}")


def pytest_terminal_summary(terminalreporter) -> None:
    if TIER.started is None:
        return
    TIER.end()
    assert TIER.finished is not None
    parts = [f"cluster tier: {TIER.finished - TIER.started:.1f} s"]
    if TIER.build_seconds is not None:
        parts.append(f"control plane built in {TIER.build_seconds:.0f} s (fresh machine)")
    if TIER.control_plane_seconds is not None:
        parts.append(f"control plane started in {TIER.control_plane_seconds:.1f} s")
    terminalreporter.write_line("; ".join(parts))


def progress(config_: pytest.Config, message: str) -> None:
    """Print while a fixture runs (pytest captures fixture output otherwise)."""
    capture = config_.pluginmanager.getplugin("capturemanager")
    if capture is None:
        print(message, file=sys.stderr, flush=True)
        return
    with capture.global_and_fixture_disabled():
        print(f"[cluster] {message}", file=sys.stderr, flush=True)


@pytest.fixture(scope="session")
def kube_bin_dir(pytestconfig: pytest.Config) -> Path:
    TIER.begin()
    started = time.monotonic()
    fresh = not (cache_dir() / "bin" / "kube-apiserver").exists()
    bin_dir = ensure_binaries(lambda line: progress(pytestconfig, line))
    if fresh:
        TIER.build_seconds = time.monotonic() - started
    return bin_dir


@pytest.fixture(scope="session")
def control_plane(
    kube_bin_dir: Path, tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[ControlPlane]:
    progress(pytestconfig, f"starting Kubernetes {KUBE_VERSION} on 127.0.0.1")
    plane = ControlPlane(kube_bin_dir, tmp_path_factory.mktemp("kube"))
    TIER.closers.append(plane.stop)
    try:
        plane.start()
    except BaseException:
        plane.stop()
        raise
    TIER.control_plane_seconds = plane.startup_seconds
    progress(pytestconfig, f"control plane up in {plane.startup_seconds:.1f} s at {plane.server}")
    yield plane
    plane.stop()


@pytest.fixture(scope="session")
def cluster(control_plane: ControlPlane, pytestconfig: pytest.Config) -> Iterator[Cluster]:
    """Nodes registered and Ready, CRDs established, the default ServiceAccount present."""
    api = config.new_client_from_config(config_file=str(control_plane.kubeconfig))
    agent_config = control_plane.write_kubeconfig(
        control_plane.node_agent, control_plane.workdir / "node-agent.kubeconfig"
    )
    agent_api = config.new_client_from_config(config_file=str(agent_config))
    kubelet = KubeletExec(control_plane.pki.apiserver_cert, control_plane.pki.apiserver_key)
    TIER.closers.append(kubelet.stop)
    kubelet.start()
    agent = NodeAgent(agent_api, kubelet_port=kubelet.port)
    TIER.closers.append(agent.stop)
    agent.start()
    kubectl = Kubectl(control_plane.kubeconfig)
    kubectl("apply", "--server-side", "-f", str(CRDS))
    kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=120s")
    core = client.CoreV1Api(api)

    def nodes_schedulable() -> bool:
        nodes = core.list_node().items
        return len(nodes) == len(agent.nodes) and all(
            any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
            and not any(t.key.startswith("node.kubernetes.io/") for t in n.spec.taints or [])
            for n in nodes
        )

    wait_until(nodes_schedulable, 120, "nodes Ready without not-ready taints", interval=0.5)
    wait_until(
        lambda: core.read_namespaced_service_account("default", "default"),
        120,
        "the default ServiceAccount",
        interval=0.5,
    )
    zones = sorted({n.metadata.labels[ZONE_LABEL] for n in core.list_node().items})
    progress(pytestconfig, f"{len(agent.nodes)} nodes Ready in zones {', '.join(zones)}")
    yield Cluster(control_plane, api, agent, kubectl, kubelet)
    agent.stop()
    kubelet.stop()
    for error in agent.errors:  # not failures by themselves; they explain odd pod states
        progress(pytestconfig, f"node agent: {error}")


@pytest.fixture(scope="session")
def helm(control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(control_plane.kubeconfig, tmp_path_factory.mktemp("helm-home"))
