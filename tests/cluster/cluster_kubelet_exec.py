"""The kubelet's exec endpoint for the node agent's nodes, and the podman runtime behind it.

`kubectl exec`, and the kubernetes client's `stream()`, ask the API server for
`pods/<name>/exec`; the API server checks RBAC, finds the pod's node and forwards the
WebSocket upgrade to that node's kubelet at `https://<address>:<port>/exec/<ns>/<pod>/
<container>?command=...`. Every node of the agent names this one server on 127.0.0.1
(an InternalDNS address, and the port in `status.daemonEndpoints`). It speaks the kubelet's
`v4.channel.k8s.io` protocol: one binary frame per chunk, its first byte the channel
(1 stdout, 2 stderr, 3 the final status).

The command runs in a real container: `PodmanPods` starts the pod's container from its live
spec the first time it is exec'd into (image, command and args, environment from values,
Secret and ConfigMap keys and field references, the securityContext, emptyDir volumes) on a
podman network, and runs the command with `podman exec`. Only the exec'd container runs,
not its sidecars; a pod whose namespace has no runtime attached is answered as a kubelet
answers for a container that does not run.
"""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client
from websockets.sync.server import Server, ServerConnection, serve

from airflow_platform.image import podman
from airflow_platform.procs import free_port

PROTOCOL = "v4.channel.k8s.io"
STDOUT, STDERR, STATUS = 1, 2, 3


class ExecRefused(Exception):
    """The kubelet cannot run the command (no such container, a volume it cannot give)."""


def _status(exit_code: int | None, message: str = "") -> bytes:
    if exit_code == 0:
        body: dict[str, Any] = {"metadata": {}, "status": "Success"}
    elif exit_code is None:
        body = {"metadata": {}, "status": "Failure", "message": message,
                "reason": "InternalError"}  # fmt: skip
    else:
        body = {
            "metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
            "message": f"command terminated with non-zero exit code: {exit_code}",
            "details": {"causes": [{"reason": "ExitCode", "message": str(exit_code)}]},
        }  # fmt: skip
    return bytes([STATUS]) + json.dumps(body).encode()


@dataclass
class PodmanPods:
    """Runs the exec'd containers of pods in `namespaces` with podman, on `network`."""

    core: client.CoreV1Api
    network: str
    namespaces: set[str]
    started: dict[tuple[str, str, str], str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def container(self, namespace: str, pod_name: str, container: str) -> str:
        if namespace not in self.namespaces:
            raise ExecRefused(f"container {container!r} of pod {pod_name!r} is not running "
                              "(the node agent runs no container in this namespace)")  # fmt: skip
        key = (namespace, pod_name, container)
        with self._lock:
            if key not in self.started:
                pod = self.core.read_namespaced_pod(pod_name, namespace)
                argv, env = run_args(self.core, pod, container, self.network)
                name = argv[argv.index("--name") + 1]
                done = subprocess.run(["podman", *argv], env={**podman.env(), **env},
                                      capture_output=True, text=True, timeout=120)  # fmt: skip
                if done.returncode != 0:
                    raise ExecRefused(f"podman run failed: {done.stderr.strip()[-500:]}")
                self.started[key] = name
            return self.started[key]

    def logs(self) -> str:
        out = []
        for name in self.started.values():
            done = podman.run("logs", "--tail", "40", name, check=False)
            out.append(f"--- {name}\n{done.stdout}{done.stderr}")
        return "\n".join(out)[-8000:]

    def stop(self) -> None:
        for name in self.started.values():
            podman.run("rm", "-f", "-t", "0", name, check=False)
        self.started.clear()


def _resolve_env(core: client.CoreV1Api, pod: Any, spec: Any) -> dict[str, str]:
    namespace = pod.metadata.namespace

    def secret(name: str) -> dict[str, str]:
        data = core.read_namespaced_secret(name, namespace).data or {}
        return {k: base64.b64decode(v).decode() for k, v in data.items()}

    def config_map(name: str) -> dict[str, str]:
        return dict(core.read_namespaced_config_map(name, namespace).data or {})

    fields = {
        "metadata.name": pod.metadata.name,
        "metadata.namespace": namespace,
        "spec.nodeName": pod.spec.node_name or "",
        "status.podIP": pod.status.pod_ip or "",
        "status.hostIP": pod.status.host_ip or "",
        "spec.serviceAccountName": pod.spec.service_account_name or "",
    }
    env: dict[str, str] = {}
    for source in spec.env_from or []:
        prefix = source.prefix or ""
        if source.secret_ref:
            env.update({prefix + k: v for k, v in secret(source.secret_ref.name).items()})
        if source.config_map_ref:
            env.update({prefix + k: v for k, v in config_map(source.config_map_ref.name).items()})
    for var in spec.env or []:
        if var.value_from is None:
            env[var.name] = var.value or ""
        elif var.value_from.secret_key_ref:
            ref = var.value_from.secret_key_ref
            env[var.name] = secret(ref.name)[ref.key]
        elif var.value_from.config_map_key_ref:
            ref = var.value_from.config_map_key_ref
            env[var.name] = config_map(ref.name)[ref.key]
        elif var.value_from.field_ref:
            env[var.name] = fields[var.value_from.field_ref.field_path]
        else:
            raise ExecRefused(f"env {var.name}: resourceFieldRef is not given by this runtime")
    return env


def run_args(
    core: client.CoreV1Api, pod: Any, container: str, network: str
) -> tuple[list[str], dict[str, str]]:
    """`podman run` arguments for one container of a live pod, and the environment podman
    passes through (`-e NAME` takes the value from podman's own environment, so Secret
    values never appear on a command line)."""
    spec = next((c for c in pod.spec.containers if c.name == container), None)
    if spec is None:
        raise ExecRefused(f"container {container!r} not found in pod {pod.metadata.name!r}")
    pod_sc = pod.spec.security_context or client.V1PodSecurityContext()
    sc = spec.security_context or client.V1SecurityContext()
    name = f"kubelet-{pod.metadata.namespace}-{pod.metadata.name}-{container}"
    argv = ["run", "-d", "--name", name, "--network", network, "--hostname", pod.metadata.name]
    user = sc.run_as_user if sc.run_as_user is not None else pod_sc.run_as_user
    group = sc.run_as_group if sc.run_as_group is not None else pod_sc.run_as_group
    if user is not None:
        argv += ["--user", f"{user}:{group if group is not None else 0}"]
    if sc.read_only_root_filesystem:
        argv.append("--read-only")
    if sc.capabilities and "ALL" in (sc.capabilities.drop or []):
        argv += ["--cap-drop", "all"]
    if sc.allow_privilege_escalation is False:
        argv += ["--security-opt", "no-new-privileges"]
    volumes = {v.name: v for v in pod.spec.volumes or []}
    for mount in spec.volume_mounts or []:
        volume = volumes[mount.name]
        if volume.empty_dir is None:
            raise ExecRefused(f"volume {mount.name!r}: only emptyDir volumes are given by "
                              "this runtime")  # fmt: skip
        options = f"type=tmpfs,destination={mount.mount_path},tmpfs-mode=1777"
        argv += ["--mount", options + (",ro=true" if mount.read_only else "")]
    env = _resolve_env(core, pod, spec)
    for key in env:
        argv += ["-e", key]
    if spec.command:
        argv += ["--entrypoint", json.dumps(spec.command)]
    argv.append(spec.image)
    argv += list(spec.args or [])
    return argv, env


@dataclass
class KubeletExec:
    """The exec endpoint every node of the agent points the API server at."""

    cert: Path
    key: Path
    runtime: Callable[[str, str, str], str] | None = None  # (ns, pod, container) -> name
    port: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    _server: Server | None = None

    def start(self) -> KubeletExec:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        self.port = free_port()
        self._server = serve(self._handle, "127.0.0.1", self.port, ssl=context,
                             subprotocols=[PROTOCOL], compression=None)  # fmt: skip
        threading.Thread(target=self._server.serve_forever, name="kubelet-exec",
                         daemon=True).start()  # fmt: skip
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()

    def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        url = urllib.parse.urlsplit(ws.request.path)
        parts = url.path.strip("/").split("/")
        query = urllib.parse.parse_qs(url.query)
        command = query.get("command", [])
        self.requests.append({"path": url.path, "command": command})
        if len(parts) != 4 or parts[0] != "exec" or not command:
            ws.send(_status(None, f"not an exec request: {url.path}"))
            return
        _, namespace, pod, container = parts
        try:
            if self.runtime is None:
                raise ExecRefused(f"container {container!r} is not running")
            name = self.runtime(namespace, pod, container)
        except (ExecRefused, client.ApiException) as exc:
            ws.send(_status(None, str(exc)))
            return
        process = subprocess.Popen(["podman", "exec", name, *command], env=podman.env(),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        lock = threading.Lock()

        def pump(stream: Any, channel: int) -> None:
            for chunk in iter(lambda: stream.read1(65536), b""):
                with lock:
                    ws.send(bytes([channel]) + chunk)

        pumps = [
            threading.Thread(target=pump, args=(process.stdout, STDOUT), daemon=True),
            threading.Thread(target=pump, args=(process.stderr, STDERR), daemon=True),
        ]
        for thread in pumps:
            thread.start()
        for thread in pumps:
            thread.join()
        with lock:
            ws.send(_status(process.wait()))
