"""`local up | status | down`: the embedded services, then the chart's own workloads.

Order of `up`: PostgreSQL, moto and OpenBao -> the bucket and queues -> `helm template` ->
the plan (planning.py) -> seed Vault, the queue's visibility timeout and the example DAGs
where the rendering says -> the OpenID Connect provider (its client's redirect URI needs the
API server's port) with one user per role -> the migrations Job (skipped when the same
rendering already migrated this database) -> dagsync (ready after its first sync) -> every
Airflow component at once (minWorkers Celery workers) -> wait until each is healthy
(health.py). The watchdog then restarts what dies and scales the workers (autoscaler.py);
`down` stops it all (lifecycle.py).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_platform.local import postgres, queues, services
from airflow_platform.local.autoscaler import WORKER_COMPONENT
from airflow_platform.local.handles import REPO, PlatformHandles, SignInUser
from airflow_platform.local.health import Health
from airflow_platform.local.lifecycle import INFRA, Lifecycle
from airflow_platform.local.mapping import LocalContext, ProcessSpec
from airflow_platform.local.planning import (
    AIRFLOW_COMPONENTS,
    Plan,
    api_spec,
    autoscaling_record,
    choose_workers,
    is_airflow,
    is_dagsync,
    make_plan,
    spec_env,
)
from airflow_platform.local.rendering import Rendering, chart_values, helm_template
from airflow_platform.local.state import StateDir, write_private
from airflow_platform.local.supervisor import Supervisor
from airflow_platform.local.users import admin_user
from airflow_platform.procs import free_port, port_open

__all__ = [
    "AIRFLOW_COMPONENTS",
    "CHART",
    "INFRA",
    "LOCAL_VALUES",
    "LocalPlatform",
    "PlatformError",
    "SignInUser",
    "UpResult",
    "is_airflow",
    "is_dagsync",
]

CHART = REPO / "charts" / "airflow-platform"
LOCAL_VALUES = Path(__file__).with_name("values-local.yaml")
EXAMPLE_DAGS = REPO / "dags" / "examples"


class PlatformError(RuntimeError):
    """Something the user must fix; the message says what."""


@dataclass
class UpResult:
    api_url: str
    issuer: str
    users: list[SignInUser]
    admin: str
    bucket: str
    dags_prefix: str
    moto_endpoint: str
    log_groups: dict[str, str] = field(default_factory=dict)  # MWAA group -> its folder
    started: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    seconds: float = 0.0


class LocalPlatform(PlatformHandles):
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
        self.life = Lifecycle(self.state, self.sup, progress)
        self.health = Health(self.state, self.sup, progress)
        self.last_plan: Plan | None = None

    @property
    def scaling(self):  # the worker pool's configuration, from the last plan
        return self.last_plan.scaling if self.last_plan else None

    # --- configuration ------------------------------------------------------------------
    def values(self) -> dict[str, Any]:
        """The chart's values as helm reads them (`helm show values`) with the local and the
        user's values files over them: no default of our own."""
        return chart_values(self.check_tools(), CHART, self.values_files)

    def render(self, helm: str, runtime: dict[str, str], extra: Path | None = None) -> Rendering:
        files = [*self.values_files, *([extra] if extra else [])]  # extra: queues.values_file
        text = helm_template(helm, CHART, files, runtime)
        self.state.prepare()
        write_private(self.state.rendered, text)  # may hold rendered Secrets
        return Rendering.parse(text)

    def plan(self, rendering: Rendering, ctx: LocalContext) -> dict[str, list[ProcessSpec]]:
        self.last_plan = make_plan(rendering, ctx, self.state.rendered)
        return self.last_plan.as_dict()

    def _ports(self) -> dict[str, int]:
        ports: dict[str, int] = dict(self.state.load().get("ports", {}))
        for name in INFRA:
            # A remembered port someone else took meanwhile is replaced silently; the
            # service is ours to move (nothing outside the state dir refers to it).
            if name not in ports or (not self.sup.alive(name) and port_open(ports[name])):
                ports[name] = free_port()
        return ports

    def check_tools(self) -> str:
        from airflow_platform.local.tooling import missing_tools

        helm, missing = missing_tools(REPO, CHART)
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
        data = self.state.update(ports=ports)

        self.say("starting PostgreSQL, moto (S3 + SQS), OpenBao (Vault API); helm template")
        # The run-time values follow from the ports alone: helm renders while services start.
        runtime = self._runtime(ports)
        with ThreadPoolExecutor(5) as pool:
            pg = pool.submit(
                postgres.start_postgres, self.sup, ports["postgres"], generated["postgres-password"]
            )
            moto = pool.submit(services.start_moto, self.sup, ports["moto"])
            bao = pool.submit(
                services.start_openbao, self.sup, ports["openbao"], generated["vault-token"]
            )
            values = chart_values(helm, CHART, self.values_files)
            # workers.queues: each queue's moto URL is known from the port, like the others.
            queue_urls = {
                q: services.queue_url(runtime_moto(ports), f"{services.CELERY_QUEUE}-{q}")
                for q in queues.names(values)
            }
            queue_values = queues.values_file(self.state, values, queue_urls)
            rendered = pool.submit(self.render, helm, runtime, queue_values)
            database_url, moto_endpoint, vault_url = pg.result(), moto.result(), bao.result()
            rendering = rendered.result()
        result_backend_url = postgres.ensure_results_role(
            ports["postgres"], generated["postgres-password"], generated["results-password"]
        )
        aws = services.seed_aws(moto_endpoint, queues.names(values))
        made = {
            "celery.sqsQueueUrl": aws.celery_queue_url,
            "dags.s3.bucket": aws.bucket,
            "dags.sync.eventQueueUrl": aws.event_queue_url,
            "secretsBackend.vault.url": vault_url,
        }
        if any(runtime[k] != v for k, v in made.items()):
            raise PlatformError(f"rendered with {runtime}, but the services gave {made}")
        if aws.worker_queue_urls != queue_urls:
            raise PlatformError(
                f"rendered with queues {queue_urls}, but moto gave {aws.worker_queue_urls}"
            )
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
        plan = self._plan_with_api_port(rendering, ctx)
        admin = admin_user(rendering.role_mapping())
        groups = {**plan.log_groups}
        groups.update({c.name: plan.log_groups[s.name] for s in plan.workers for c in s.companions})
        self.state.update(component_ports=ctx.ports, log_groups=groups, admin_user=admin)
        prefix = self._seed_from_rendering(
            plan, aws, moto_endpoint, vault_url, generated["vault-token"]
        )
        api_port = api_spec(plan.components).http_probe
        assert api_port is not None
        if self.oidc(ports).ensure([api_port[1]], generated):
            self.say(f"OpenID Connect provider at {self.oidc(ports).issuer}")

        self.report_skipped(plan)
        self.life.migrate(plan.migrations)
        started, kept = [], []
        self.say("starting dagsync (S3 -> DAGs folder)")
        for spec in plan.dagsync:
            (started if self.life.ensure(spec) else kept).append(spec.name)
        for spec in plan.dagsync:
            services.poll(
                self.sup,
                spec.name,
                lambda s=spec: services.status_of(s.url("/readyz")) == 200,
                120,
                "dagsync's first sync",
            )
        components = [s for s in plan.components if s.component != WORKER_COMPONENT]
        # The autoscaler's configuration first: the watchdog must know the pool (and that a
        # worker draining is not to be restarted) before it sees any worker.
        self.state.update(autoscaling=autoscaling_record(plan, ctx))
        workers = choose_workers(plan, self.state.load()) + queues.prepare(
            self.state, rendering, ctx
        )
        self.say("starting " + ", ".join(s.name for s in components + workers))
        for spec in components + workers:
            (started if self.life.ensure(spec) else kept).append(spec.name)
        components = components + workers
        self.state.update(
            specs={s.name: _spec_summary(s) for s in plan.dagsync + components},
            bucket=aws.bucket,
            dags_prefix=prefix,
            moto_endpoint=moto_endpoint,
            vault_url=vault_url,
        )
        self.life.ensure_watchdog()
        self.health.wait_healthy(components, timeout)
        api = api_spec(components)
        assert api.http_probe is not None
        return UpResult(
            api_url=f"http://127.0.0.1:{api.http_probe[1]}",
            issuer=self.oidc(ports).issuer,
            users=self.sign_in_users(),
            admin=admin,
            bucket=aws.bucket,
            dags_prefix=prefix,
            moto_endpoint=moto_endpoint,
            log_groups={g: str(self.state.logs / g) for g in sorted(set(groups.values())) if g},
            started=started,
            kept=kept,
            seconds=time.monotonic() - began,
        )

    def _runtime(self, ports: dict[str, int]) -> dict[str, str]:
        """Values only known at run time, given to `helm template` as --set-string."""
        moto = runtime_moto(ports)
        return {
            "celery.sqsQueueUrl": services.queue_url(moto, services.CELERY_QUEUE),
            "dags.s3.bucket": services.BUCKET,
            "dags.sync.eventQueueUrl": services.queue_url(moto, services.EVENT_QUEUE),
            "secretsBackend.vault.url": f"http://127.0.0.1:{ports['openbao']}",
            "aws.region": services.REGION,
            "auth.oidc.issuerUrl": self.oidc(ports).issuer,
        }

    def _seed_from_rendering(
        self, plan: Plan, aws: services.AwsResources, moto: str, vault_url: str, token: str
    ) -> str:
        """Vault's paths, the Celery queue's visibility timeout and the DAGs prefix are the
        ones the rendered components use. Returns the DAGs prefix."""
        kwargs = json.loads(spec_env(plan, "scheduler", "AIRFLOW__SECRETS__BACKEND_KWARGS"))
        services.seed_vault(
            vault_url,
            token,
            mount=kwargs["mount_point"],
            connections_path=kwargs["connections_path"],
            variables_path=kwargs["variables_path"],
        )
        visibility = spec_env(
            plan, "scheduler", "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT"
        )
        for url in [aws.celery_queue_url, *aws.worker_queue_urls.values()]:
            services.set_visibility_timeout(moto, url, int(visibility))
        prefix = spec_env(plan, "dagsync", "DAGSYNC_DAGS_PREFIX")
        uploaded = services.upload_dags(moto, EXAMPLE_DAGS, prefix + "examples/")
        self.say(
            f"bucket s3://{aws.bucket} ready (versioned, events -> SQS); "
            f"{len(uploaded)} example DAG file(s) uploaded"
        )
        return prefix

    def report_skipped(self, plan: Plan) -> None:
        extra = [
            s for s in plan.skipped if not s.endswith((":dagsync-init", ":wait-for-migrations"))
        ]
        if extra:
            self.say("not run locally (one disk, no Kubernetes API): " + ", ".join(extra))

    def _api_alive(self) -> bool:
        launch = self.state.load().get("launch", {})
        return any(
            v.get("component") == "api-server" and self.sup.alive(n) for n, v in launch.items()
        )

    def _plan_with_api_port(self, rendering: Rendering, ctx: LocalContext) -> Plan:
        """`--api-port` is the one port a user picks: taken by someone else, it is an error.
        A remembered port taken meanwhile is simply replaced by a free one."""
        self.plan(rendering, ctx)
        assert self.last_plan is not None
        api = api_spec(self.last_plan.components)
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
            self.plan(rendering, ctx)
        return self.last_plan

    # --- status / down --------------------------------------------------------------------
    def status(self) -> list[dict[str, Any]]:
        return self.health.status()

    def down(self, wipe: bool = False) -> list[str]:
        stopped = self.life.down()
        if wipe and self.state.root.exists():
            shutil.rmtree(self.state.root)
            self.say(f"wiped {self.state.root}")
        return stopped


def _spec_summary(spec: ProcessSpec) -> dict[str, Any]:
    return {
        "component": spec.component,
        "probe": spec.url(spec.http_probe[0]) if spec.http_probe else None,
        "ports": {str(k): v for k, v in spec.ports.items()},
    }


def runtime_moto(ports: dict[str, int]) -> str:
    return f"http://127.0.0.1:{ports['moto']}"
