"""`airflow-platform scaling ...`: the policy on traces, demand from the DB, the worker agent."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from airflow_platform.scaling.celery_settings import worker_celery_environment
from airflow_platform.scaling.policy import Observation, PolicyConfig, ScalingPolicy

scaling_app = typer.Typer(
    help="Worker scaling: MWAA's formula, drain-safe scale-in, pod deletion cost.",
    no_args_is_help=True,
)
console = Console()

MinWorkers = Annotated[int, typer.Option(envvar="SCALING_MIN_WORKERS", help="MinWorkers.")]
MaxWorkers = Annotated[int, typer.Option(envvar="SCALING_MAX_WORKERS", help="MaxWorkers.")]
TasksPerWorker = Annotated[
    int, typer.Option(envvar="SCALING_TASKS_PER_WORKER", help="Celery concurrency per worker.")
]
IdleSeconds = Annotated[
    float,
    typer.Option(envvar="SCALING_IDLE_SECONDS", help="Demand must stay lower this long."),
]
DatabaseUrl = Annotated[
    str,
    typer.Option(
        envvar="AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        help="SQLAlchemy URL of Airflow's metadata database.",
        show_default=False,
    ),
]


def _config(min_workers: int, max_workers: int, tasks: int, idle: float) -> PolicyConfig:
    try:
        return PolicyConfig(min_workers, max_workers, tasks, idle)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


def _read_trace(path: Path) -> list[Observation]:
    text = sys.stdin.read() if str(path) == "-" else path.read_text()
    observations = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            observations.append(
                Observation(
                    at=float(raw["at"]),
                    running=int(raw.get("running", 0)),
                    queued=int(raw.get("queued", 0)),
                    busy_workers=int(raw.get("busy_workers", 0)),
                    current_workers=int(raw["current_workers"]),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise typer.BadParameter(
                f"{path} line {number}: {exc!s}; expected a JSON object with at, "
                "current_workers and optionally running, queued, busy_workers",
                param_hint="--trace",
            ) from exc
    return observations


@scaling_app.command()
def decide(
    trace: Annotated[
        Path,
        typer.Option(help="JSON lines of observations ('-' for stdin)."),
    ],
    min_workers: MinWorkers = 1,
    max_workers: MaxWorkers = 10,
    tasks_per_worker: TasksPerWorker = 5,
    idle_seconds: IdleSeconds = 120.0,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON decision per line.")] = False,
) -> None:
    """Run the scaling policy over a trace of observations and print every decision."""
    policy = ScalingPolicy(_config(min_workers, max_workers, tasks_per_worker, idle_seconds))
    observations = _read_trace(trace)
    try:
        decisions = [policy.observe(obs) for obs in observations]
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--trace") from exc
    if as_json:
        for d in decisions:
            typer.echo(json.dumps({**d.__dict__, "action": d.action.value}))
        return
    table = Table("at", "running+queued", "busy", "current", "target", "desired", "action")
    for obs, d in zip(observations, decisions, strict=True):
        table.add_row(
            f"{obs.at:g}",
            str(obs.running + obs.queued),
            str(obs.busy_workers),
            str(obs.current_workers),
            str(d.target),
            str(d.desired),
            f"{d.action.value}: {d.reason}",
        )
    console.print(table)


@scaling_app.command()
def demand(
    database_url: DatabaseUrl = "",
    queue: Annotated[
        list[str] | None, typer.Option(help="Count only these Airflow queues (repeatable).")
    ] = None,
    min_workers: MinWorkers = 1,
    max_workers: MaxWorkers = 10,
    tasks_per_worker: TasksPerWorker = 5,
) -> None:
    """Read running/queued tasks and busy workers from the metadata DB; print the target."""
    from airflow_platform.scaling.demand import make_engine, read_demand

    config = _config(min_workers, max_workers, tasks_per_worker, 120.0)
    try:
        engine = make_engine(database_url)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--database-url") from exc
    found = read_demand(engine, queue or ())
    engine.dispose()
    typer.echo(
        json.dumps(
            {
                "running": found.running,
                "queued": found.queued,
                "busy_workers": found.busy_workers,
                "running_by_host": found.running_by_host,
                "target_workers": config.target(found.running, found.queued),
            }
        )
    )


@scaling_app.command("celery-env")
def celery_env(
    tasks_per_worker: TasksPerWorker = 5,
    visibility_timeout: Annotated[int, typer.Option(help="SQS visibility timeout (s).")] = 43200,
) -> None:
    """Print the Airflow environment variables that make worker scale-in drain-safe."""
    try:
        env = worker_celery_environment(tasks_per_worker, visibility_timeout)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    for key, value in env.items():
        typer.echo(f"{key}={value}")


def _airflow_hostname() -> str:
    # The same callable Airflow uses to fill task_instance.hostname ([core] hostname_callable).
    from airflow.utils.net import get_hostname

    return get_hostname()


@scaling_app.command("worker-agent")
def worker_agent(
    database_url: DatabaseUrl = "",
    pod_name: Annotated[str, typer.Option(envvar="POD_NAME", help="This pod's name.")] = "",
    namespace: Annotated[
        str, typer.Option(envvar="POD_NAMESPACE", help="This pod's namespace.")
    ] = "",
    hostname: Annotated[
        str,
        typer.Option(
            envvar="WORKER_AGENT_HOSTNAME",
            help="The worker's Airflow hostname (default: Airflow's hostname_callable).",
        ),
    ] = "",
    interval: Annotated[
        float, typer.Option(envvar="WORKER_AGENT_INTERVAL", help="Seconds between updates.")
    ] = 10.0,
    once: Annotated[bool, typer.Option(help="Update once and exit.")] = False,
    metrics_port: Annotated[
        int,
        typer.Option(
            envvar="WORKER_AGENT_METRICS_PORT",
            min=0,
            max=65535,
            help="Serve Prometheus /metrics on this port; 0 = not served.",
        ),
    ] = 0,
    metrics_host: Annotated[
        str,
        typer.Option(envvar="WORKER_AGENT_METRICS_HOST", help="Address /metrics binds."),
    ] = "127.0.0.1",
) -> None:
    """Keep this worker pod's pod-deletion-cost equal to the tasks it runs (idle = 0)."""
    from functools import partial

    from airflow_platform.logs import setup_logging
    from airflow_platform.scaling.deletion_cost import (
        AgentMetrics,
        DeletionCostAgent,
        StepResult,
        core_v1_api,
        patch_pod_deletion_cost,
    )
    from airflow_platform.scaling.demand import make_engine, running_on_host

    if not pod_name or not namespace:
        raise typer.BadParameter(
            "pod name and namespace are required: set POD_NAME and POD_NAMESPACE from the "
            "downward API (fieldRef metadata.name / metadata.namespace) or pass "
            "--pod-name/--namespace"
        )
    if interval <= 0:
        raise typer.BadParameter(f"must be > 0, got {interval}", param_hint="--interval")
    try:
        engine = make_engine(database_url)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--database-url") from exc
    host = hostname or _airflow_hostname()
    api = core_v1_api()
    agent = DeletionCostAgent(
        partial(running_on_host, engine, host),
        partial(patch_pod_deletion_cost, api, namespace, pod_name),
    )
    log = setup_logging("worker-agent", "airflow_platform.scaling")
    log.info(
        f"pod {namespace}/{pod_name}, Airflow hostname {host!r}",
        extra={"event": "started", "pod": pod_name, "namespace": namespace, "hostname": host},
    )

    metrics = AgentMetrics()
    server = metrics.serve(metrics_host, metrics_port) if metrics_port and not once else None

    def report(result: StepResult) -> None:
        metrics.observe(result)
        if result.patched_cost is not None:
            running, cost = result.running_tasks, result.patched_cost
            log.info(
                f"{running} running task(s) -> pod-deletion-cost {cost}",
                extra={"event": "deletion_cost", "running_tasks": running, "cost": cost},
            )

    if once:
        result = agent.step()
        report(result)
        if result.error:
            raise typer.Exit(1)
        return
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    agent.run(interval, stop, on_step=report)
    if server is not None:
        server.shutdown()
    engine.dispose()
    log.info("stopped", extra={"event": "stopped"})


def register(app: typer.Typer) -> None:
    app.add_typer(scaling_app, name="scaling")
