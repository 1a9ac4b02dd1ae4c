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
| a worker pod's own hostname (task_instance.   | the pod name, through `hostname_callable`     |
| hostname) and its log server port             | (hostname.py); each extra worker its own port |

Values that only exist at run time (queue URLs, the Vault address, the bucket) are given
to `helm template` as --set-string, so the chart renders them itself.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from airflow_platform.local.hostname import HOSTNAME_CALLABLE, POD_HOSTNAME_ENV
from airflow_platform.local.rendering import NAMESPACE, Container, Rendering, Workload
from airflow_platform.local.state import StateDir, write_private
from airflow_platform.paths import DEFAULT_SYNC_ROOT, SYNC_ROOT_ENV
from airflow_platform.procs import free_port

IMAGE_HOME = "/opt/airflow"
LOGS_MOUNT = "/opt/airflow/logs"
SHARED_MOUNTS = {
    # One disk, one dagsync: every component reads the same published DAGs folder.
    str(DEFAULT_SYNC_ROOT): "sync",
    # The API server reads task logs from local files when it shares the workers' disk;
    # the same directory Airflow derives from AIRFLOW_HOME, as in the image.
    LOGS_MOUNT: "airflow-home/logs",
}
# Ports a component opens that the chart leaves at Airflow's defaults; on a shared
# machine each must be one we picked (the log servers bind every interface).
# Every component gets the same values: the API server uses them to fetch live logs.
OWNED_PORT_ENV = (
    "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT",
    "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT",
)
# Airflow's own knob for a listening port the chart declares but leaves at its default.
LISTEN_PORT_ENV = {
    8080: "AIRFLOW__API__PORT",
    8974: "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT",
    8793: "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT",
    8794: "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT",
}
# Listeners Airflow binds to 0.0.0.0 by default: loopback only on a shared machine.
LOOPBACK_ENV = ("AIRFLOW__API__HOST", "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST")
HOSTNAME_CALLABLE_ENV = "AIRFLOW__CORE__HOSTNAME_CALLABLE"
WORKER_LOG_PORT_ENV = "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"
PORT_FLAGS = ("--port", "-p", "--health-port", "--metrics-port")
# Airflow sub-commands whose log server binds every interface, with no option to choose:
# locally it stays off (nothing listens beyond 127.0.0.1) and the API server reads the
# task logs from the logs folder every process shares.
LOG_SERVER_COMMANDS = (("celery", "worker"), ("triggerer",))
SKIP_SERVE_LOGS = "--skip-serve-logs"
HOST_FLAGS = ("--host", "--hostname", "-H")


class MappingError(RuntimeError):
    """The rendering references something the local mapping cannot provide."""


@dataclass
class LocalContext:
    state: StateDir
    values: dict[str, Any]  # the chart's values.yaml merged with the local values file
    generated: dict[str, str]  # state secrets (fernet-key, api-secret-key, jwt-secret...)
    database_url: str
    moto_endpoint: str
    vault_url: str
    vault_token: str
    region: str
    ports: dict[str, int]  # persisted local port book: "<process>:<container port>" -> port
    overrides: dict[str, dict[str, str]] = field(default_factory=dict)  # component -> env
    result_backend_url: str = ""  # the result backend's own role; "" = database_url

    def port_for(self, key: str) -> int:
        if key not in self.ports:
            self.ports[key] = free_port()
        return self.ports[key]


@dataclass
class ProcessSpec:
    name: str  # e.g. scheduler-0
    component: str  # e.g. scheduler
    container: str
    argv: list[str]
    env: dict[str, str]
    ports: dict[int, int]  # container port -> local port
    http_probe: tuple[str, int] | None  # (path, local port) from the readiness probe
    cwd: Path
    notes: list[str] = field(default_factory=list)

    def url(self, path: str = "") -> str | None:
        if self.http_probe is None:
            return None
        return f"http://127.0.0.1:{self.http_probe[1]}{path}"


def _dig(values: dict[str, Any], dotted: str) -> Any:
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def local_secret_table(ctx: LocalContext) -> dict[tuple[str, str], str]:
    """The Secrets a cluster operator creates before installing, by the names in values."""
    table: dict[tuple[str, str], str] = {}
    for value_key, generated_key in (
        ("secrets.fernetKey", "fernet-key"),
        ("secrets.apiSecretKey", "api-secret-key"),
        ("secrets.jwtSecret", "jwt-secret"),
    ):
        name = _dig(ctx.values, f"{value_key}.secretName")
        key = _dig(ctx.values, f"{value_key}.key")
        if name and key:
            table[(name, key)] = ctx.generated[generated_key]
    client_secret = _dig(ctx.values, "auth.oidc.clientSecret")
    if isinstance(client_secret, dict) and client_secret.get("existingSecret"):
        key = client_secret.get("key") or "client-secret"
        table[(client_secret["existingSecret"], key)] = ctx.generated["oidc-client-secret"]
    for db in ("database", "kedaDatabase"):
        name = _dig(ctx.values, f"{db}.existingSecret")
        key = _dig(ctx.values, f"{db}.secretKey") or "connection"
        if name:
            table[(name, key)] = ctx.database_url
    name = _dig(ctx.values, "database.resultBackendSecret.existingSecret")
    if name:
        key = _dig(ctx.values, "database.resultBackendSecret.secretKey") or "connection"
        table[(name, key)] = ctx.result_backend_url or ctx.database_url
    return table


class PathMap:
    """Container paths -> state-dir paths, longest prefix first, on path boundaries."""

    def __init__(self) -> None:
        self.prefixes: dict[str, Path] = {}

    def add(self, container_path: str, local: Path) -> None:
        self.prefixes[str(PurePosixPath(container_path))] = local

    def apply(self, text: str) -> str:
        # One pass over all prefixes, so a mapped path is never mapped again
        # (/opt/airflow/sync -> <state>/sync must not then match the /tmp mount).
        if not self.prefixes:
            return text
        alternatives = "|".join(re.escape(p) for p in sorted(self.prefixes, key=len, reverse=True))
        pattern = rf"(?<![\w.\-/])({alternatives})(?=/|$|[\s:;,\"'=])"
        return re.sub(pattern, lambda m: str(self.prefixes[m.group(1)]), text)


class EndpointMap:
    """Service DNS names -> 127.0.0.1 and the local port of the component behind them."""

    def __init__(self) -> None:
        self.rules: list[tuple[re.Pattern[str], str]] = []

    def add(self, service: str, port: int, local_port: int) -> None:
        host = re.escape(service) + rf"(?:\.{re.escape(NAMESPACE)}(?:\.svc(?:\.cluster\.local)?)?)?"
        self.rules.append((re.compile(rf"\b{host}:{port}\b"), f"127.0.0.1:{local_port}"))

    def apply(self, text: str) -> str:
        for pattern, replacement in self.rules:
            text = pattern.sub(replacement, text)
        return text


def _mentions(argv: list[str], *ports: int) -> bool:
    return any(str(p) in argv for p in ports)


def is_airflow_argv(argv: list[str]) -> bool:
    return (
        bool(argv)
        and Path(argv[0]).name in ("airflow-platform", "airflow")
        and ("dagsync" not in argv[:3])
    )


def venv_executable(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def _expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes $(VAR) expansion against variables defined earlier; $$ escapes."""

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", sub, value)


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
        mapped_env.update(self._local_environment(mapped_env, paths, notes))
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

    def worker_process(self, workload: Workload, container: Container, replica: int) -> ProcessSpec:
        """A Celery worker replica: its own Airflow hostname (the pod name), so busy and idle
        workers can be told apart, and beyond replica 0 its own log server port (the
        API server's configured port, like the Service, points at replica 0)."""
        spec = self.process(workload, container, replica)
        if HOSTNAME_CALLABLE_ENV not in spec.env:
            spec.env[HOSTNAME_CALLABLE_ENV] = HOSTNAME_CALLABLE
            spec.env[POD_HOSTNAME_ENV] = f"{workload.name}-{replica}"
            spec.notes.append("hostname: the pod name")
        if replica > 0 and WORKER_LOG_PORT_ENV in spec.env:
            shared = int(spec.env[WORKER_LOG_PORT_ENV])
            own = self.ctx.port_for(f"{spec.name}:{WORKER_LOG_PORT_ENV}")
            spec.env[WORKER_LOG_PORT_ENV] = str(own)
            spec.ports = {c: own if p == shared else p for c, p in spec.ports.items()}
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

    def _local_environment(
        self, env: dict[str, str], paths: PathMap, notes: list[str]
    ) -> dict[str, str]:
        """What a pod gets from its node and image rather than from the chart."""
        venv_bin = str(Path(sys.executable).parent)
        local: dict[str, str] = {
            "PATH": f"{venv_bin}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(self.ctx.state.airflow_home),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "AWS_ENDPOINT_URL": self.ctx.moto_endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
        local.setdefault("AWS_REGION", env.get("AWS_REGION", self.ctx.region))
        local.setdefault("AWS_DEFAULT_REGION", env.get("AWS_DEFAULT_REGION", self.ctx.region))
        # The sync root and the entrypoint's writable dirs default to container paths.
        for key, default in (
            (SYNC_ROOT_ENV, str(DEFAULT_SYNC_ROOT)),
            ("AIRFLOW_PLATFORM_PACKAGES_DIR", f"{IMAGE_HOME}/packages"),
            ("AIRFLOW_PLATFORM_WHEEL_CACHE", f"{IMAGE_HOME}/wheel-cache"),
            ("AIRFLOW_HOME", IMAGE_HOME),
        ):
            if key not in env:
                local[key] = paths.apply(default)
        self._vault_token_auth(env, local, notes)
        return local

    def _vault_token_auth(self, env: dict[str, str], local: dict[str, str], notes: list) -> None:
        """A cluster authenticates to Vault with its service account; there is none here,
        so the backend keeps its paths and gets the dev server's token instead."""
        raw = env.get("AIRFLOW__SECRETS__BACKEND_KWARGS")
        if not raw or "vault" not in env.get("AIRFLOW__SECRETS__BACKEND", "").lower():
            return
        try:
            kwargs = json.loads(raw)
        except ValueError as exc:
            raise MappingError(f"AIRFLOW__SECRETS__BACKEND_KWARGS is not JSON: {exc}") from exc
        for key in list(kwargs):
            if key.startswith("kubernetes_") or key in ("role_id", "secret_id", "auth_mount_point"):
                kwargs.pop(key)
        kwargs.update(url=self.ctx.vault_url, auth_type="token", token=self.ctx.vault_token)
        local["AIRFLOW__SECRETS__BACKEND_KWARGS"] = json.dumps(kwargs)
        notes.append("vault: token auth against the dev server")
