"""From a rendered workload to a local process: the documented mapping.

The chart's rendering is the only source of commands, args and environment. What this
module changes, and nothing else:

| in the rendering                              | locally                                       |
|-----------------------------------------------|-----------------------------------------------|
| secretKeyRef to the Secrets named in values   | generated Fernet/API/JWT keys, the PostgreSQL |
| (secrets.*, database, kedaDatabase,           | URL, the OpenID Connect client secret (state  |
| auth.oidc.clientSecret)                       | dir, secrets.json); the result backend: a     |
| database.resultBackendSecret                  | role of its own (services.py)                 |
| secretKeyRef / configMapKeyRef / envFrom to   | the rendered object's data                    |
| objects the chart renders itself              |                                               |
| fieldRef (pod name, namespace, pod IP)        | process name, the namespace, 127.0.0.1        |
| volume mounts (emptyDir, configMap, secret)   | directories under the state dir; the sync and |
|                                               | logs mounts are shared by every process       |
| container ports, `--port`, `*_PORT`, probes   | free ports on 127.0.0.1                       |
| `0.0.0.0` hosts                               | 127.0.0.1                                     |
| the worker and triggerer log servers (they    | `--skip-serve-logs`: the API server reads the |
| bind every interface, with no host option)    | shared logs folder                            |
| Service DNS names (`svc[.ns[.svc...]]:port`)  | 127.0.0.1:<the local port behind it>          |
| (no AWS endpoint in a cluster)                | AWS_ENDPOINT_URL=moto, test credentials       |
| serviceAccount-based Vault auth               | token auth with the dev server's root token   |
| a worker pod's own address and hostname       | 127.0.<queue>.<replica+2>, by `hostname_      |
| (task_instance.hostname) and its log-server   | callable` (hostname.py); its log server binds |
| container (binds every interface)             | that address only, on the shared port         |

Values that only exist at run time (queue URLs, the Vault address, the bucket) are given
to `helm template` as --set-string, so the chart renders them itself.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from airflow_platform.local import node_env
from airflow_platform.local.hostname import HOSTNAME_CALLABLE, POD_HOSTNAME_ENV
from airflow_platform.local.rendering import NAMESPACE, Container, Rendering, Workload
from airflow_platform.local.state import write_private
from airflow_platform.local.translation import (
    HOST_FLAGS,
    HOSTNAME_CALLABLE_ENV,
    IMAGE_HOME,
    IMAGE_PLATFORM_DAGS,
    LISTEN_PORT_ENV,
    LOG_SERVER_COMMANDS,
    LOGS_MOUNT,
    LOOPBACK_ENV,
    OWNED_PORT_ENV,
    PORT_FLAGS,
    REPO_DAGS,
    SHARED_MOUNTS,
    SKIP_SERVE_LOGS,
    EndpointMap,
    LocalContext,
    MappingError,
    PathMap,
    ProcessSpec,
    _expand,
    _mentions,
    is_airflow_argv,
    local_secret_table,
    venv_executable,
)
from airflow_platform.paths import DEFAULT_SYNC_ROOT

__all__ = ["LocalContext", "Mapper", "MappingError", "ProcessSpec"]

LOG_SERVER_MODULE = "airflow.utils.serve_logs.core"
LOCAL_LOG_SERVER = "airflow_platform.local.log_server"


def worker_address(replica: int, lane: int = 0) -> str:
    """Worker replica N's own loopback address (its "pod IP"): 127.0.<lane>.<N+2>, where lane
    0 is the default queue and lane i the i-th of workers.queues (127.0.0.0/8 is loopback)."""
    if not 0 <= replica < 250 or not 0 <= lane < 250:
        raise MappingError(f"worker replica {replica}: at most 250 workers per queue, 250 queues")
    return f"127.0.{lane}.{replica + 2}"


class Mapper:
    def __init__(self, rendering: Rendering, ctx: LocalContext) -> None:
        self.rendering = rendering
        self.ctx = ctx
        self.secret_table = local_secret_table(ctx)
        self.rendered_secrets = rendering.secrets()
        self.config_maps = rendering.config_maps()
        self.endpoints = self._endpoints()

    # --- services and ports -------------------------------------------------------
    def _component_port_key(self, process: str, container_port: int) -> str:
        return f"{process}:{container_port}"

    def _endpoints(self) -> EndpointMap:
        endpoints = EndpointMap()
        workloads = {w.component: w for w in self.rendering.workloads()}
        for svc in self.rendering.services():
            selector = (svc.get("spec") or {}).get("selector") or {}
            component = selector.get("app.kubernetes.io/component")
            workload = workloads.get(component or "")
            if workload is None:
                continue
            for port in (svc.get("spec") or {}).get("ports") or []:
                target = port.get("targetPort", port["port"])
                container_port = self._resolve_named_port(workload, target)
                if container_port is None:
                    continue
                # A Service balances over replicas; locally it points at replica 0.
                local = self.ctx.port_for(
                    self._component_port_key(f"{workload.component}-0", container_port)
                )
                endpoints.add(svc["metadata"]["name"], int(port["port"]), local)
        return endpoints

    @staticmethod
    def _resolve_named_port(workload: Workload, target: int | str) -> int | None:
        if isinstance(target, int) or str(target).isdigit():
            return int(target)
        for c in workload.containers:
            for p in c.ports:
                if p.get("name") == target:
                    return int(p["containerPort"])
        return None

    # --- env ----------------------------------------------------------------------
    def _secret_value(self, name: str, key: str, optional: bool, where: str) -> str | None:
        if (name, key) in self.secret_table:
            return self.secret_table[(name, key)]
        if key in self.rendered_secrets.get(name, {}):
            return self.rendered_secrets[name][key]
        if optional:
            return None
        raise MappingError(
            f"{where} reads Secret {name!r} key {key!r}, which is neither rendered by the "
            "chart nor one of the Secrets named in values (secrets.*, database, "
            "kedaDatabase): name it in values or render it"
        )

    def _config_value(self, name: str, key: str, optional: bool, where: str) -> str | None:
        if key in self.config_maps.get(name, {}):
            return self.config_maps[name][key]
        if optional:
            return None
        raise MappingError(f"{where} reads ConfigMap {name!r} key {key!r}, not rendered")

    def _field_value(self, path: str, pod: str) -> str:
        return {
            "metadata.name": pod,
            "metadata.namespace": NAMESPACE,
            "status.podIP": "127.0.0.1",
            "status.hostIP": "127.0.0.1",
            "spec.nodeName": socket.gethostname(),
            "spec.serviceAccountName": "local",
        }.get(path, "")

    def container_env(self, container: Container, pod: str, where: str) -> dict[str, str]:
        env: dict[str, str] = {}
        for source in container.env_from:
            prefix = source.get("prefix", "")
            if ref := source.get("configMapRef"):
                data = self.config_maps.get(ref["name"])
                if data is None and not ref.get("optional"):
                    raise MappingError(f"{where} envFrom ConfigMap {ref['name']!r}: not rendered")
                env.update({prefix + k: v for k, v in (data or {}).items()})
            if ref := source.get("secretRef"):
                data = dict(self.rendered_secrets.get(ref["name"], {}))
                data.update({k: v for (n, k), v in self.secret_table.items() if n == ref["name"]})
                if not data and not ref.get("optional"):
                    raise MappingError(f"{where} envFrom Secret {ref['name']!r}: unknown")
                env.update({prefix + k: v for k, v in data.items()})
        for item in container.env:
            name = item["name"]
            if "value" in item:
                env[name] = _expand(str(item["value"]), env)
                continue
            source = item.get("valueFrom") or {}
            value: str | None = None
            if ref := source.get("secretKeyRef"):
                value = self._secret_value(
                    ref["name"], ref["key"], bool(ref.get("optional")), f"{where} env {name}"
                )
            elif ref := source.get("configMapKeyRef"):
                value = self._config_value(
                    ref["name"], ref["key"], bool(ref.get("optional")), f"{where} env {name}"
                )
            elif ref := source.get("fieldRef"):
                value = self._field_value(ref["fieldPath"], pod)
            elif source.get("resourceFieldRef"):
                continue  # resource limits mean nothing for a local process
            else:
                value = ""
            if value is not None:
                env[name] = value
        return env

    # --- volumes -------------------------------------------------------------------
    def path_map(self, workload: Workload, container: Container, process: str) -> PathMap:
        paths = PathMap()
        state = self.ctx.state
        for mount in container.volume_mounts:
            mount_path = mount["mountPath"]
            volume = workload.volumes.get(mount["name"], {})
            if mount_path in SHARED_MOUNTS:
                local = state.root / SHARED_MOUNTS[mount_path]
            elif "configMap" in volume or "secret" in volume or "projected" in volume:
                local = self._materialize(volume, process)
            elif claim := volume.get("persistentVolumeClaim"):
                local = state.volume(claim["claimName"])
            else:  # emptyDir and anything else: private to the process
                local = state.volume(f"{process}/{mount['name']}")
            if sub := mount.get("subPath"):
                local = local / sub
            else:
                local.mkdir(parents=True, exist_ok=True)
            paths.add(mount_path, local)
        # The image's home is not a mount in a pod (it is the image's own directory).
        paths.prefixes.setdefault(IMAGE_HOME, state.airflow_home)
        paths.prefixes.setdefault(IMAGE_PLATFORM_DAGS, REPO_DAGS)
        paths.prefixes.setdefault(str(DEFAULT_SYNC_ROOT), state.sync_root)
        paths.prefixes.setdefault(LOGS_MOUNT, state.root / SHARED_MOUNTS[LOGS_MOUNT])
        state.airflow_home.mkdir(parents=True, exist_ok=True)
        return paths

    def _materialize(self, volume: dict[str, Any], process: str) -> Path:
        target = self.ctx.state.volume(f"{process}/{volume['name']}")
        target.mkdir(parents=True, exist_ok=True)
        projected = volume.get("projected")
        sources: list[dict[str, Any]] = (projected.get("sources") or []) if projected else [volume]
        for source in sources:
            if cm := source.get("configMap"):
                data = self.config_maps.get(cm["name"], {})
            elif sec := source.get("secret"):
                name = sec.get("secretName") or sec.get("name")
                data = dict(self.rendered_secrets.get(name, {}))
                data.update({k: v for (n, k), v in self.secret_table.items() if n == name})
            else:
                continue  # service account tokens and downward API: nothing local
            spec = cm if source.get("configMap") else source["secret"]
            items = spec.get("items") or [{"key": k, "path": k} for k in data]
            for item in items:
                if item["key"] in data:
                    path = target / item["path"]
                    if source.get("secret"):
                        write_private(path, data[item["key"]])
                        continue
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(data[item["key"]])
        return target

    # --- the process ----------------------------------------------------------------
    def process(
        self, workload: Workload, container: Container, replica: int, name: str | None = None
    ) -> ProcessSpec:
        process = name or f"{workload.component}-{replica}"
        pod = f"{workload.name}-{replica}"
        where = f"{workload.kind}/{workload.name} container {container.name}"
        env = self.container_env(container, pod, where)
        paths = self.path_map(workload, container, process)
        ports: dict[int, int] = {}
        for p in container.ports:
            cport = int(p["containerPort"])
            knob = LISTEN_PORT_ENV.get(cport)
            key = knob if knob in OWNED_PORT_ENV else self._component_port_key(process, cport)
            ports[cport] = self.ctx.port_for(key)

        def local_text(text: str) -> str:
            return self.endpoints.apply(paths.apply(text))

        notes: list[str] = []
        argv = [local_text(x) for x in [*container.command, *container.args]]
        argv = self._rewrite_flags(argv, ports, process)
        if is_airflow_argv(argv) and SKIP_SERVE_LOGS not in argv:
            tail = argv[argv.index("airflow") + 1 :] if "airflow" in argv else []
            if any(tuple(tail[: len(c)]) == c for c in LOG_SERVER_COMMANDS):
                argv.append(SKIP_SERVE_LOGS)
                notes.append("log server off: the logs folder is shared")
        if argv:
            argv[0] = venv_executable(argv[0])
        mapped_env = {k: local_text(v) for k, v in env.items()}
        for key, value in list(mapped_env.items()):
            if key.endswith("_PORT") and value.isdigit() and int(value) in ports:
                mapped_env[key] = str(ports[int(value)])
            elif key.endswith("_HOST") and value == "0.0.0.0":
                mapped_env[key] = "127.0.0.1"
        for cport, local in ports.items():
            knob = LISTEN_PORT_ENV.get(cport)
            if knob and knob not in mapped_env and not _mentions(argv, cport, local):
                mapped_env[knob] = str(local)
        if is_airflow_argv(argv):
            for key in OWNED_PORT_ENV:
                mapped_env[key] = str(self.ctx.port_for(key))
            for key in LOOPBACK_ENV:
                mapped_env[key] = "127.0.0.1"
        mapped_env.update(node_env.local_environment(self.ctx, mapped_env, paths, notes))
        for key, value in self.ctx.overrides.get(workload.component, {}).items():
            notes.append(f"override {key}")
            mapped_env[key] = value
        http_probe = self._http_probe(container, ports, process)
        return ProcessSpec(
            name=process,
            component=workload.component,
            container=container.name,
            argv=argv,
            env=mapped_env,
            ports=ports,
            http_probe=http_probe,
            cwd=self.ctx.state.airflow_home,
            notes=notes,
        )

    @staticmethod
    def is_log_server(workload: Workload, container: Container) -> bool:
        """The worker pod's log-server container (Airflow's serve_logs)."""
        argv = [*container.command, *container.args]
        worker = workload.component == "worker" or workload.component.startswith("worker-")
        return worker and LOG_SERVER_MODULE in argv

    def worker_process(
        self, workload: Workload, container: Container, replica: int, lane: int = 0
    ) -> ProcessSpec:
        """A Celery worker replica with its pod's own address: a loopback address of its own
        (127.0.0.0/8 is all loopback), which is also its Airflow hostname. The API server
        fetches a running task's log from http://<hostname>:<log server port>, so the pod's
        log-server container runs beside it, bound to that address only."""
        spec = self.process(workload, container, replica)
        address = worker_address(replica, lane)
        if HOSTNAME_CALLABLE_ENV not in spec.env:
            spec.env[HOSTNAME_CALLABLE_ENV] = HOSTNAME_CALLABLE
            spec.env[POD_HOSTNAME_ENV] = address
            spec.notes.append(f"hostname: its own address {address}")
        log_server = next((c for c in workload.containers if self.is_log_server(workload, c)), None)
        if log_server is not None:
            companion = self.process(workload, log_server, replica, name=f"{spec.name}-log-server")
            companion.argv = [venv_executable("python"), "-m", LOCAL_LOG_SERVER, address]
            companion.component = "worker-log-server"
            companion.notes.append(f"bound to {address} only")
            spec.companions.append(companion)
        return spec

    def _rewrite_flags(self, argv: list[str], ports: dict[int, int], process: str) -> list[str]:
        out: list[str] = []
        i = 0
        while i < len(argv):
            token = argv[i]
            flag, eq, inline = token.partition("=")
            value = inline if eq else (argv[i + 1] if i + 1 < len(argv) else None)
            replacement: str | None = None
            if flag in PORT_FLAGS and value is not None and value.isdigit():
                cport = int(value)
                replacement = str(
                    ports.get(cport) or self.ctx.port_for(self._component_port_key(process, cport))
                )
                ports.setdefault(cport, int(replacement))
            elif flag in HOST_FLAGS and value == "0.0.0.0":
                replacement = "127.0.0.1"
            if replacement is None:
                out.append(token)
                i += 1
            elif eq:
                out.append(f"{flag}={replacement}")
                i += 1
            else:
                out += [flag, replacement]
                i += 2
        return out

    def _http_probe(
        self, container: Container, ports: dict[int, int], process: str
    ) -> tuple[str, int] | None:
        for probe in (container.readiness, container.startup, container.liveness):
            get = (probe or {}).get("httpGet")
            if not get:
                continue
            port = get.get("port")
            cport: int | None
            if isinstance(port, int) or str(port).isdigit():
                cport = int(port)
            else:
                cport = next(
                    (int(p["containerPort"]) for p in container.ports if p.get("name") == port),
                    None,
                )
            if cport is None:
                continue
            local = ports.get(cport) or self.ctx.port_for(self._component_port_key(process, cport))
            ports.setdefault(cport, local)
            return get.get("path", "/"), local
        return None
