"""A real Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver,
kube-controller-manager and kube-scheduler, each a process stopped by its PID.

Ports are picked at run time. Clients authenticate with static bearer tokens: an admin in
system:masters for helm/kubectl and the tests, and the users the default RBAC policy grants
to the controller-manager and the scheduler. There is no kubelet (see cluster_node_agent)."""

from __future__ import annotations

import contextlib
import secrets
import shutil
import ssl
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from cluster_pki import SERVICE_CIDR, Pki, create_pki

from airflow_platform.procs import ManagedProcess, free_port, port_open, wait_until

ADMIN_USER = "cluster-admin"
CLUSTER_NAME = "airflow-platform-test"


@dataclass
class Credentials:
    user: str
    token: str
    groups: tuple[str, ...] = ()


@dataclass
class ControlPlane:
    bin_dir: Path
    workdir: Path
    processes: list[ManagedProcess] = field(default_factory=list)
    api_port: int = 0
    startup_seconds: float = 0.0
    _etcd_dir: Path | None = None

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.pki: Pki = create_pki(self.workdir / "pki")
        self.admin = Credentials(ADMIN_USER, secrets.token_hex(16), ("system:masters",))
        self.node_agent = Credentials("node-agent", secrets.token_hex(16), ("system:masters",))
        self.controller_manager = Credentials(
            "system:kube-controller-manager", secrets.token_hex(16)
        )
        self.scheduler = Credentials("system:kube-scheduler", secrets.token_hex(16))

    # -- addresses and client configuration ------------------------------------------
    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "admin.kubeconfig"

    def write_kubeconfig(self, who: Credentials, path: Path, namespace: str = "default") -> Path:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": CLUSTER_NAME,
                    "cluster": {
                        "server": self.server,
                        "certificate-authority": str(self.pki.ca_cert),
                    },
                }
            ],
            "users": [{"name": who.user, "user": {"token": who.token}}],
            "contexts": [
                {
                    "name": CLUSTER_NAME,
                    "context": {"cluster": CLUSTER_NAME, "user": who.user, "namespace": namespace},
                }
            ],
            "current-context": CLUSTER_NAME,
        }
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def _get(self, url: str, token: str | None = None) -> tuple[int, str]:
        context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        if not url.startswith(self.server):  # components serve self-signed certificates
            context = ssl._create_unverified_context()
        request = urllib.request.Request(url)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, context=context, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    def api_ready(self) -> bool:
        status, _ = self._get(f"{self.server}/readyz", self.admin.token)
        return status == 200

    # -- lifecycle ---------------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str]) -> ManagedProcess:
        proc = ManagedProcess(name, argv, self.workdir / "logs" / f"{name}.log").start()
        self.processes.append(proc)
        return proc

    def _wait_healthy(self, proc: ManagedProcess, check, timeout: float) -> None:
        def healthy() -> bool:
            proc.check_alive()  # fail fast with the log tail if it died
            return bool(check())

        wait_until(healthy, timeout, f"{proc.name} to become healthy", interval=0.25)

    def start(self, timeout: float = 180.0) -> ControlPlane:
        started = time.monotonic()
        tokens = self.workdir / "tokens.csv"
        tokens.write_text(
            "".join(
                f'{c.token},{c.user},{c.user},"{",".join(c.groups)}"\n'
                for c in (self.admin, self.node_agent, self.controller_manager, self.scheduler)
            )
        )
        tokens.chmod(0o600)

        # etcd keeps its data on tmpfs when there is one: fsync on a shared disk is the
        # slowest part of every write otherwise.
        shm = Path("/dev/shm")
        base = shm if shm.is_dir() else self.workdir
        self._etcd_dir = Path(tempfile.mkdtemp(prefix="airflow-platform-etcd-", dir=base))
        etcd_port, peer_port = free_port(), free_port()
        etcd = self._spawn(
            "etcd",
            [
                str(self.bin_dir / "etcd"),
                "--name=test",
                f"--data-dir={self._etcd_dir}",
                f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
                f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
                f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-cluster=test=http://127.0.0.1:{peer_port}",
                "--logger=zap",
                "--log-level=warn",
            ],
        )
        self._wait_healthy(
            etcd, lambda: self._get(f"http://127.0.0.1:{etcd_port}/health")[0] == 200, 60
        )

        self.api_port = free_port()
        apiserver = self._spawn(
            "kube-apiserver",
            [
                str(self.bin_dir / "kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.api_port}",
                "--insecure-port=0",
                "--advertise-address=127.0.0.1",
                # A loopback address is not a valid Endpoints address: do not publish one.
                "--endpoint-reconciler-type=none",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                f"--tls-cert-file={self.pki.apiserver_cert}",
                f"--tls-private-key-file={self.pki.apiserver_key}",
                f"--client-ca-file={self.pki.ca_cert}",
                f"--token-auth-file={tokens}",
                "--authorization-mode=RBAC",
                f"--service-account-key-file={self.pki.sa_pub}",
                f"--service-account-signing-key-file={self.pki.sa_key}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                "--api-audiences=https://kubernetes.default.svc.cluster.local",
                "--allow-privileged=true",
                # The node agent's kubelet endpoint (exec) is on 127.0.0.1, named InternalDNS.
                "--kubelet-preferred-address-types=InternalDNS",
                "--profiling=false",
                f"--cert-dir={self.workdir / 'apiserver-certs'}",
                "--v=1",
            ],
        )
        self._wait_healthy(apiserver, self.api_ready, timeout)

        cm_config = self.write_kubeconfig(
            self.controller_manager, self.workdir / "controller-manager.kubeconfig"
        )
        cm_port = free_port()
        controller_manager = self._spawn(
            "kube-controller-manager",
            [
                str(self.bin_dir / "kube-controller-manager"),
                f"--kubeconfig={cm_config}",
                f"--authentication-kubeconfig={cm_config}",
                f"--authorization-kubeconfig={cm_config}",
                "--bind-address=127.0.0.1",
                f"--secure-port={cm_port}",
                "--port=0",
                "--leader-elect=false",
                # No --cloud-provider: the cloud controllers (service LB, routes, cloud node
                # lifecycle) do not run.
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={self.pki.sa_key}",
                f"--root-ca-file={self.pki.ca_cert}",
                f"--cluster-signing-cert-file={self.pki.ca_cert}",
                f"--cluster-signing-key-file={self.pki.ca_key}",
                f"--cluster-name={CLUSTER_NAME}",
                f"--cert-dir={self.workdir / 'controller-manager-certs'}",
                "--profiling=false",
                "--v=1",
            ],
        )
        sched_config = self.write_kubeconfig(self.scheduler, self.workdir / "scheduler.kubeconfig")
        sched_port = free_port()
        scheduler = self._spawn(
            "kube-scheduler",
            [
                str(self.bin_dir / "kube-scheduler"),
                f"--kubeconfig={sched_config}",
                f"--authentication-kubeconfig={sched_config}",
                f"--authorization-kubeconfig={sched_config}",
                "--bind-address=127.0.0.1",
                f"--secure-port={sched_port}",
                "--port=0",
                "--leader-elect=false",
                f"--cert-dir={self.workdir / 'scheduler-certs'}",
                "--profiling=false",
                "--v=1",
            ],
        )
        for proc, port in ((controller_manager, cm_port), (scheduler, sched_port)):
            self._wait_healthy(
                proc,
                lambda port=port: (
                    port_open(port) and self._get(f"https://127.0.0.1:{port}/healthz")[0] == 200
                ),
                timeout,
            )
        self.write_kubeconfig(self.admin, self.kubeconfig)
        self.startup_seconds = time.monotonic() - started
        return self

    def stop(self) -> None:
        """Stop every process by its PID, newest first, and drop etcd's tmpfs data."""
        while self.processes:
            self.processes.pop().stop()
        if self._etcd_dir is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(self._etcd_dir)
            self._etcd_dir = None
