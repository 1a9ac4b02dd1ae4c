"""The pieces of the rendering -> process mapping (mapping.py): what a process is, its
context, the secret table, and the path, endpoint and $(VAR) translations."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from airflow_platform.local.rendering import NAMESPACE
from airflow_platform.local.state import StateDir
from airflow_platform.paths import DEFAULT_SYNC_ROOT
from airflow_platform.procs import free_port

IMAGE_HOME = "/opt/airflow"
# The platform's own DAGs (the canary), where platform/Dockerfile puts them in the image, and
# where they are in this repository.
IMAGE_PLATFORM_DAGS = "/opt/airflow-platform/dags"
REPO_DAGS = Path(__file__).resolve().parents[3] / "dags"
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
    # Processes that live and die with this one (a worker's log server).
    companions: list[ProcessSpec] = field(default_factory=list)

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
