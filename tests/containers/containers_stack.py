"""The chart's pods as real containers: host services, a podman network, and `podman kube
play` of the rendering in apply order (Secrets, ConfigMaps, Jobs, Deployments).

PostgreSQL, moto and OpenBao run on the host as in the local platform (local/services.py),
bound to the network's gateway address: reachable from the pods and from this host, not
from other machines. One stack at a time per machine (a lock in the cache directory).
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import secrets
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import yaml
from containers_kube import Host, PodPlan, plan_pods, podman_secret, referenced_secret_keys

from airflow_platform.image import podman
from airflow_platform.image.build import cache_dir
from airflow_platform.local import queues, services
from airflow_platform.local.api import AirflowApi
from airflow_platform.local.platform import CHART, LOCAL_VALUES
from airflow_platform.local.rendering import NAMESPACE, Rendering, find_helm
from airflow_platform.local.state import StateDir
from airflow_platform.local.supervisor import Supervisor
from airflow_platform.procs import address_up, free_port

REPO = Path(__file__).resolve().parents[2]
VALUES = Path(__file__).with_name("values-containers.yaml")
RELEASE = "airflow"


SIMPLE_AUTH_PASSWORDS = "/opt/airflow/simple-auth/passwords.json"  # the chart's simplePasswordsFile


class StackError(RuntimeError):
    pass


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
            last = result
        except Exception as exc:  # not there yet
            last = exc
        time.sleep(interval)
    raise StackError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


@dataclass
class ProbeResult:
    ok: bool
    detail: str


@dataclass
class Stack:
    work: Path
    image: str
    artifacts: dict[str, str] = field(default_factory=dict)  # values -> bucket keys uploaded
    progress: Callable[[str], None] = print
    run_id: str = ""  # in the name of every pod, volume and network this stack makes
    network: str = ""
    gateway: str = ""
    subnet: str = ""
    anchor: str = ""
    sup: Supervisor | None = None
    host: Host | None = None
    rendering: Rendering | None = None
    plans: list[PodPlan] = field(default_factory=list)
    played: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    configmap_files: list[Path] = field(default_factory=list)
    bucket: str = ""
    queue_values: Path | None = None  # workers.queues with their moto URLs (queues.values_file)
    admin_password: str = ""  # the API server's SimpleAuthManager admin (values-containers.yaml)
    timings: dict[str, float] = field(default_factory=dict)
    _lock: Any = None

    # --- setup --------------------------------------------------------------------------
    def start_network(self) -> None:
        cache_dir().mkdir(parents=True, exist_ok=True)
        self._lock = (cache_dir() / ".containers-tier.lock").open("w")
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        self.run_id = secrets.token_hex(3)
        self.network = f"airflow-platform-test-{self.run_id}"
        podman.run("network", "create", self.network)
        info = json.loads(podman.run("network", "inspect", self.network).stdout)[0]
        subnet = info["subnets"][0]
        self.subnet, self.gateway = subnet["subnet"], subnet["gateway"]
        # The bridge (and its gateway address) exists while a container is attached: keep one
        # for the stack's lifetime, so the host services can bind to the gateway.
        self.anchor = f"{self.network}-anchor"
        podman.run(
            "run", "-d", "--rm", "--name", self.anchor, "--network", self.network,
            "--read-only", self.image, "sleep", "infinity",
        )  # fmt: skip
        wait_for("the network's gateway address", lambda: address_up(self.gateway), 30, 0.2)

    def start_services(self) -> dict[str, str]:
        state = StateDir.at(self.work / "state")
        self.sup = Supervisor(state)
        generated = state.secrets()
        ports = {name: free_port() for name in ("postgres", "moto", "openbao")}
        with ThreadPoolExecutor(3) as pool:
            pg = pool.submit(
                services.start_postgres, self.sup, ports["postgres"],
                generated["postgres-password"], self.gateway, (self.subnet,),
            )  # fmt: skip
            moto = pool.submit(services.start_moto, self.sup, ports["moto"], self.gateway)
            bao = pool.submit(
                services.start_openbao, self.sup, ports["openbao"], generated["vault-token"],
                self.gateway,
            )  # fmt: skip
            database_url, moto_endpoint, vault_url = pg.result(), moto.result(), bao.result()
        self.host = Host(self.gateway, moto_endpoint, vault_url, generated["vault-token"])
        values = yaml.safe_load(LOCAL_VALUES.read_text())
        vault = values["secretsBackend"]["vault"]
        services.seed_vault(
            vault_url, generated["vault-token"], mount=vault["mountPoint"],
            connections_path=vault["connectionsPath"], variables_path=vault["variablesPath"],
        )  # fmt: skip
        # Each workers.queues entry gets its SQS queue in moto, its URL passed in a values file,
        # as `local up` does (a worker of a queue that does not exist exits at once).
        aws = services.seed_aws(moto_endpoint, queues.names(values))
        self.queue_values = queues.values_file(state, values, aws.worker_queue_urls)
        self.bucket = aws.bucket
        self.admin_password = secrets.token_urlsafe(16)
        return {
            **generated,
            "passwords.json": json.dumps({"admin": self.admin_password}),
            "connection": database_url,
            "celery.sqsQueueUrl": aws.celery_queue_url,
            "dags.sync.eventQueueUrl": aws.event_queue_url,
            "secretsBackend.vault.url": vault_url,
        }

    def render(self, runtime: dict[str, str]) -> Rendering:
        tag = self.image.rsplit(":", 1)[1]
        sets = {
            "image.tag": tag,
            "dags.s3.bucket": self.bucket,
            "aws.region": services.REGION,
            **{k: runtime[k] for k in ("celery.sqsQueueUrl", "dags.sync.eventQueueUrl")},
            "secretsBackend.vault.url": runtime["secretsBackend.vault.url"],
            **self.artifacts,
        }
        argv = [find_helm(REPO), "template", RELEASE, str(CHART), "--namespace", NAMESPACE]
        argv += ["-f", str(LOCAL_VALUES), "-f", str(VALUES)]
        if self.queue_values is not None:
            argv += ["-f", str(self.queue_values)]
        for key, value in sorted(sets.items()):
            argv += ["--set-string", f"{key}={value}"]
        result = subprocess.run(argv, capture_output=True, text=True)
        if result.returncode != 0:
            raise StackError(f"`helm template` failed:\n{result.stderr}")
        (self.work / "rendered.yaml").write_text(result.stdout)
        self.rendering = Rendering.parse(result.stdout)
        return self.rendering

    def create_secrets(self, generated: dict[str, str]) -> None:
        """Rendered Secrets as they are; the ones values name but the chart does not render
        (created by the operator in a cluster) from the generated keys and the database."""
        assert self.rendering is not None
        rendered = {d["metadata"]["name"]: d for d in self.rendering.of_kind("Secret")}
        wanted: dict[str, dict[str, Any]] = {
            name: {"metadata": {"name": name}, "data": dict(doc.get("data") or {}),
                   "stringData": dict(doc.get("stringData") or {})}
            for name, doc in rendered.items()
        }  # fmt: skip
        unknown = []
        for name, key in sorted(referenced_secret_keys(self.rendering)):
            if name in rendered:
                continue
            if key not in generated:
                unknown.append(f"{name}/{key}")
                continue
            wanted.setdefault(name, {"metadata": {"name": name}, "stringData": {}})
            wanted[name]["stringData"][key] = generated[key]
        if unknown:
            raise StackError(
                "the rendering reads Secrets the chart does not create and the tier cannot "
                f"fill: {', '.join(unknown)} (teach Stack.create_secrets their values)"
            )
        for name, doc in wanted.items():
            podman.run("secret", "rm", name, check=False)
            podman.run("secret", "create", name, "-", input=podman_secret(doc))
            self.secrets.append(name)
            directory = self.work / "secret-volumes" / name
            directory.mkdir(parents=True, exist_ok=True)
            for key, value in json.loads(podman_secret(doc)).items():
                import base64

                (directory / key).write_bytes(base64.b64decode(value))

    def write_configmaps(self) -> None:
        assert self.rendering is not None
        folder = self.work / "configmaps"
        folder.mkdir(exist_ok=True)
        for doc in self.rendering.of_kind("ConfigMap"):
            path = folder / f"{doc['metadata']['name']}.yaml"
            path.write_text(yaml.safe_dump(doc))
            self.configmap_files.append(path)

    def plan(self) -> list[PodPlan]:
        assert self.rendering is not None and self.host is not None
        network = ipaddress.ip_network(self.subnet)
        self.plans = plan_pods(
            self.rendering,
            lambda i: str(network.network_address + 10 + i),
            self.host,
            lambda name: self.work / "secret-volumes" / name,
            self.run_id,
        )
        return self.plans

    # --- playing ------------------------------------------------------------------------
    def play(self, plan: PodPlan) -> None:
        path = self.work / "play" / f"{plan.pod}.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(yaml.safe_dump(plan.manifest, sort_keys=False))
        argv = ["kube", "play", "--network", self.network, "--ip", plan.ip]
        for cm in self.configmap_files:
            argv += ["--configmap", str(cm)]
        self.played.append(plan.pod)
        podman.run(*argv, str(path), timeout=600)

    def state(self, container: str) -> tuple[str, int, int]:
        out = podman.run(
            "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}",
            container,
        ).stdout.split()  # fmt: skip
        return out[0], int(out[1]), int(out[2])

    def logs(self, container: str, lines: int = 60) -> str:
        result = podman.run("logs", "--tail", str(lines), container, check=False)
        return (result.stdout + result.stderr)[-6000:]

    def wait_exited(self, plan: PodPlan, timeout: float) -> dict[str, int]:
        def done() -> dict[str, int] | None:
            states = {c: self.state(plan.container_name(c)) for c in plan.containers}
            if all(s[0] in ("exited", "stopped") for s in states.values()):
                return {c: s[1] for c, s in states.items()}
            return None

        return wait_for(f"{plan.pod} to finish", done, timeout)

    def run_probe(self, plan: PodPlan, container: str, probe: dict[str, Any]) -> ProbeResult:
        timeout = float(probe.get("timeoutSeconds", 1))
        if "exec" in probe:
            argv = probe["exec"]["command"]
            # The probe's own timeout, enforced inside the container: a probe that outlives
            # it is killed there, as the kubelet's would be, instead of piling up.
            limit = str(int(timeout))
            try:
                result = podman.run(
                    "exec", plan.container_name(container), "timeout", "-s", "KILL", limit,
                    *argv, check=False, timeout=timeout + 60,
                )  # fmt: skip
            except subprocess.TimeoutExpired:
                return ProbeResult(False, f"exec {argv} timed out")
            return ProbeResult(result.returncode == 0, (result.stdout + result.stderr)[-500:])
        for kind in ("httpGet", "tcpSocket"):
            if kind in probe:
                port = probe[kind]["port"]
                number = plan.ports[container].get(str(port), port)
                if not isinstance(number, int):
                    return ProbeResult(False, f"port {port!r} is not a port of {container}")
                if kind == "tcpSocket":
                    try:
                        socket.create_connection((plan.ip, number), timeout=timeout).close()
                        return ProbeResult(True, f"tcp {plan.ip}:{number}")
                    except OSError as exc:
                        return ProbeResult(False, repr(exc))
                url = f"http://{plan.ip}:{number}{probe[kind].get('path', '/')}"
                try:
                    with urllib.request.urlopen(url, timeout=timeout + 5) as response:
                        return ProbeResult(200 <= response.status < 400, f"{url} {response.status}")
                except (urllib.error.URLError, OSError) as exc:
                    return ProbeResult(False, f"{url} {exc!r}")
        return ProbeResult(False, f"unknown probe {probe}")

    def wait_ready(self, plan: PodPlan, timeout: float) -> float:
        """Until every container's startup and readiness probes pass; a container that
        exits meanwhile fails at once, with its log."""
        began = time.monotonic()
        for container in plan.containers:
            for kind in ("startupProbe", "readinessProbe"):
                probe = plan.probes[container].get(kind)
                if not probe:
                    continue

                last: list[ProbeResult] = []

                def passes(
                    c: str = container, p: dict[str, Any] = probe, last: list = last
                ) -> bool:
                    name = plan.container_name(c)
                    status = self.state(name)[0]
                    if status != "running":
                        raise StackError(f"{name} is {status}:\n{self.logs(name)}")
                    last[:] = [self.run_probe(plan, c, p)]
                    return last[0].ok

                period = float(probe.get("periodSeconds", 10))
                try:
                    wait_for(f"{plan.pod}/{container} {kind}", passes, timeout, min(period, 5.0))
                except StackError as exc:
                    raise StackError(
                        f"{exc}\n--- last probe: {last[0].detail if last else 'none'}"
                        f"\n--- log of {container}:\n"
                        f"{self.logs(plan.container_name(container))}"
                    ) from None
        return time.monotonic() - began

    def up(self, timeout: float = 900) -> None:
        began = time.monotonic()
        self.progress("containers: network, PostgreSQL, moto and OpenBao on the gateway")
        self.start_network()
        runtime = self.start_services()
        self.upload_artifacts()
        self.render(runtime)
        self.create_secrets(runtime)
        self.write_configmaps()
        self.plan()
        started = time.monotonic()
        for plan in [p for p in self.plans if p.kind == "Job"]:
            self.progress(f"containers: playing Job {plan.workload}")
            self.play(plan)
            codes = self.wait_exited(plan, timeout)
            if any(codes.values()):
                raise StackError(
                    f"Job {plan.workload} failed {codes}:\n"
                    + "\n".join(self.logs(plan.container_name(c)) for c in plan.containers)
                )
        self.timings["job"] = time.monotonic() - started
        deployments = [p for p in self.plans if p.kind == "Deployment"]
        self.progress("containers: playing " + ", ".join(p.workload for p in deployments))
        with ThreadPoolExecutor(len(deployments)) as pool:
            list(pool.map(self.play, deployments))
            self.timings["played"] = time.monotonic() - started
            waits = dict(
                zip(
                    [p.component for p in deployments],
                    pool.map(lambda p: self.wait_ready(p, timeout), deployments),
                    strict=True,
                )
            )
        self.timings["ready"] = time.monotonic() - started
        self.timings["up"] = time.monotonic() - began
        self.progress(f"containers: every component ready {self.timings['ready']:.0f} s after play")
        del waits

    def upload_artifacts(self) -> None:
        """The hook for tests: files put in the bucket before the pods start."""

    # --- use ----------------------------------------------------------------------------
    def deployment(self, component: str) -> PodPlan:
        for plan in self.plans:
            if plan.kind == "Deployment" and plan.component == component:
                return plan
        raise StackError(f"no Deployment for component {component}")

    def api(self) -> AirflowApi:
        api_server = self.deployment("api-server")
        port = api_server.ports["api-server"]["http"]
        # The passwords Airflow reads (the file SimpleAuthManager is configured with).
        raw = podman.run(
            "exec", api_server.container_name("api-server"), "cat", SIMPLE_AUTH_PASSWORDS
        ).stdout
        username, password = next(iter(json.loads(raw).items()))
        return AirflowApi(f"http://{api_server.ip}:{port}", username, password)

    def rss_bytes(self, container: str) -> int:
        pid = int(podman.run("inspect", "--format", "{{.State.Pid}}", container).stdout)
        root = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])

    # --- teardown -----------------------------------------------------------------------
    def down(self) -> None:
        # All pods at once: one after another, each stop's grace period added up to a minute.
        with ThreadPoolExecutor(max(1, len(self.played))) as pool:
            for pod in self.played:
                pool.submit(podman.run, "pod", "rm", "-f", "-t", "5", pod, check=False,
                            timeout=120)  # fmt: skip
        for plan in self.plans:
            if plan.pod in self.played and plan.volumes:
                podman.run("volume", "rm", "-f", *plan.volumes, check=False)
        for name in self.secrets:
            podman.run("secret", "rm", name, check=False)
        if self.anchor:
            podman.run("rm", "-f", "-t", "0", self.anchor, check=False)
        if self.sup is not None:
            for name in ("postgres", "moto", "openbao"):
                self.sup.stop(name)
        if self.network:
            podman.run("network", "rm", "-f", self.network, check=False)
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
