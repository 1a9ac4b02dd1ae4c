"""Worker autoscaling on one machine: the platform's scaling policy over worker processes.

What a cluster splits between KEDA, the HPA and the ReplicaSet, the watchdog does here
every second (`Autoscaler.tick`):

- configuration: the chart's own rendering. Min/max workers and the scale-in idle window
  come from the rendered ScaledObject (or the HPA when KEDA is off) that targets the
  worker Deployment, tasks per worker from the worker's rendered Celery concurrency, the
  drain limit from its terminationGracePeriodSeconds;
- demand: `read_demand` on the metadata DB (running and queued task instances, running
  ones per worker hostname), fed to `ScalingPolicy`;
- scale-up: start workers from the pool of rendered worker replicas (`worker-N`, each
  with its own hostname and log server port);
- scale-in: idle workers first (then the least busy, newest first); SIGTERM to the Celery
  main process only — Celery's warm shutdown: it stops taking messages, finishes what it
  runs and exits. The process group is not signalled: it holds the running tasks. The
  worker is forgotten once it has exited, or killed at its grace period's end.

The last decision, each worker's state and recent scaling events are written to
`<state>/autoscaler.json` for `local status`, the tests and the benchmarks.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from airflow_platform.local.rendering import Container, Rendering, Workload
from airflow_platform.local.state import StateDir
from airflow_platform.local.supervisor import Supervisor, _process
from airflow_platform.scaling.policy import Decision, Observation, PolicyConfig

WORKER_COMPONENT = "worker"
CONCURRENCY_ENV = "AIRFLOW__CELERY__WORKER_CONCURRENCY"
DATABASE_URL_ENV = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
DECISIONS_FILE = "autoscaler.json"
QUEUES_KEY = "queue_autoscaling"  # extra worker queues' records (queues.py), by queue name
MAX_EVENTS = 50


class ScalingConfigError(RuntimeError):
    """The rendering does not say how to scale the workers; the message says what is missing."""


@dataclass(frozen=True)
class WorkerScaling:
    min_workers: int
    max_workers: int
    tasks_per_worker: int
    scale_in_idle_seconds: float
    drain_timeout_seconds: float
    source: str  # which rendered object the numbers come from

    def policy_config(self) -> PolicyConfig:
        return PolicyConfig(
            min_workers=self.min_workers,
            max_workers=self.max_workers,
            tasks_per_worker=self.tasks_per_worker,
            scale_in_idle_seconds=self.scale_in_idle_seconds,
        )

    @property
    def pool_size(self) -> int:
        """Worker names available: max workers, plus as many again to replace workers
        that are still draining (a rollout's surge)."""
        return 2 * self.max_workers


def worker_name(replica: int) -> str:
    return f"{WORKER_COMPONENT}-{replica}"


def worker_scaling(rendering: Rendering, workload: Workload, container: Container) -> WorkerScaling:
    """The scaling the chart rendered for the worker Deployment; no second copy of it."""
    scaler = rendering.scaler_of(workload)
    if scaler is None:
        raise ScalingConfigError(
            f"the rendered chart has no ScaledObject or HorizontalPodAutoscaler for "
            f"{workload.kind} {workload.name}: the local platform scales workers by it "
            "(set workers.keda.enabled, or check the chart's workers/ templates)"
        )
    spec = scaler.get("spec") or {}
    source = f"{scaler['kind']} {scaler['metadata']['name']}"
    if scaler["kind"] == "ScaledObject":
        low, high = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
        hpa = (spec.get("advanced") or {}).get("horizontalPodAutoscalerConfig") or {}
        behavior = hpa.get("behavior") or {}
        window = (behavior.get("scaleDown") or {}).get(
            "stabilizationWindowSeconds", spec.get("cooldownPeriod", 300)
        )
    else:
        low, high = spec.get("minReplicas", 1), spec.get("maxReplicas")
        behavior = spec.get("behavior") or {}
        window = (behavior.get("scaleDown") or {}).get("stabilizationWindowSeconds", 300)
    env = {e["name"]: e.get("value") for e in container.env}
    concurrency = env.get(CONCURRENCY_ENV)
    if concurrency is None or not str(concurrency).isdigit():
        raise ScalingConfigError(
            f"the rendered worker container sets no numeric {CONCURRENCY_ENV} "
            f"(got {concurrency!r}): tasks per worker come from it (workers.tasksPerWorker)"
        )
    if high is None:
        raise ScalingConfigError(f"{source} has no maximum replica count")
    try:
        scaling = WorkerScaling(
            min_workers=int(low),
            max_workers=int(high),
            tasks_per_worker=int(concurrency),
            scale_in_idle_seconds=float(window),
            drain_timeout_seconds=float(workload.termination_grace_seconds),
            source=source,
        )
        scaling.policy_config()  # validates
    except ValueError as exc:
        raise ScalingConfigError(f"{source}: {exc} (workers.* values)") from exc
    return scaling


def drain(
    state: StateDir, name: str, timeout_seconds: float | None = None, reason: str = "requested"
) -> int:
    """Start a worker's drain: mark it draining (so nothing restarts it) and send SIGTERM
    to its Celery main process only. Returns that PID; the autoscaler forgets the worker
    once it has exited."""
    with state.locked():
        data = state.load()
        rec = data.get("processes", {}).get(name)
        if rec is None:
            raise RuntimeError(f"{name} is not running")
        draining = data.setdefault("draining", {})
        if name in draining:
            return int(rec["pid"])
        if _process(rec["pid"], rec["create_time"]) is None:
            raise RuntimeError(f"{name} is not running (pid {rec['pid']} is gone)")
        if timeout_seconds is None:
            owners = [data.get("autoscaling") or {}, *(data.get(QUEUES_KEY) or {}).values()]
            owner = next((o for o in owners if name in o.get("pool", [])), owners[0])
            config = owner.get("config") or {}
            timeout_seconds = float(config.get("drain_timeout_seconds", 30))
        now = time.time()
        draining[name] = {
            "pid": rec["pid"],
            "since": now,
            "deadline": now + timeout_seconds,
            "reason": reason,
        }
        state.save(data)
        # Not os.killpg: the group holds Celery's pool children, which run the tasks.
        os.kill(int(rec["pid"]), signal.SIGTERM)
        return int(rec["pid"])


def decisions_file(queue: str | None = None) -> str:
    return DECISIONS_FILE if queue is None else f"autoscaler-{queue}.json"


def read_decisions(state: StateDir, queue: str | None = None) -> dict[str, Any]:
    try:
        return json.loads((state.root / decisions_file(queue)).read_text())
    except (FileNotFoundError, ValueError):
        return {}


class Autoscaler:
    """Runs inside the watchdog; `tick()` observes, decides and acts once. `queue` names an
    extra worker queue (workers.queues): its own record, demand and decisions file."""

    def __init__(
        self, state: StateDir, sup: Supervisor, log: Callable[[str], None], queue: str | None = None
    ) -> None:
        self.state, self.sup, self.queue = state, sup, queue
        tag = f"autoscaler[{queue}]:" if queue else "autoscaler:"
        self.log = lambda message: log(message.replace("autoscaler:", tag, 1))
        self._config: WorkerScaling | None = None
        self._policy: Any = None
        self._engine: Any = None
        self._engine_url = ""
        self._db_down_since: float | None = None
        self._events: list[dict[str, Any]] = list(read_decisions(state, queue).get("events", []))

    def _raw(self) -> dict[str, Any] | None:
        data = self.state.load()
        if self.queue is None:
            return data.get("autoscaling")
        return (data.get(QUEUES_KEY) or {}).get(self.queue)

    def _demand_filter(self) -> dict[str, list[str]]:
        """An extra queue's own tasks; the default queue's: all but the extra queues'."""
        if self.queue is not None:
            return {"queues": [self.queue]}
        return {"exclude": sorted(self.state.load().get(QUEUES_KEY) or {})}

    # --- one round ------------------------------------------------------------------------
    def tick(self) -> Decision | None:
        from airflow_platform.scaling.policy import ScalingPolicy

        raw = self._raw()
        if not raw:
            return None
        self._reap(raw["pool"])
        config = WorkerScaling(**raw["config"])
        if config != self._config:
            self._config = config
            self._policy = ScalingPolicy(config.policy_config())
            self.log(
                f"autoscaler: workers {config.min_workers}..{config.max_workers}, "
                f"{config.tasks_per_worker} tasks per worker, scale-in after "
                f"{config.scale_in_idle_seconds:g}s idle (from {config.source})"
            )
        demand = self._demand(raw["database_url"])
        if demand is None:
            return None
        data = self.state.load()
        pool: list[str] = raw["pool"]
        hostnames: dict[str, str] = raw["hostnames"]
        records = data.get("processes", {})
        draining = data.get("draining", {})
        active = [n for n in pool if n in records and n not in draining]
        busy = {n: demand.running_by_host.get(hostnames.get(n, ""), 0) for n in pool}
        observation = Observation(
            at=time.monotonic(),
            running=demand.running,
            queued=demand.queued,
            busy_workers=sum(1 for n in active if busy[n]),
            current_workers=len(active),
        )
        decision = self._policy.observe(observation)
        if decision.desired > len(active):
            self._scale_up(decision, decision.desired - len(active), raw)
        elif decision.desired < len(active):
            victims = sorted(active, key=lambda n: (busy[n] > 0, busy[n], -pool.index(n)))
            self._scale_in(decision, victims[: len(active) - decision.desired], config)
        self._record(decision, observation, raw, busy)
        return decision

    def _demand(self, url: str):  # -> Demand | None
        import sqlalchemy as sa

        from airflow_platform.scaling.demand import read_demand

        if self._engine is None or url != self._engine_url:
            # Short connect timeout: the loop must keep restarting components while the
            # database is down.
            self._engine = sa.create_engine(
                url,
                pool_size=1,
                max_overflow=0,
                pool_pre_ping=True,
                connect_args={"connect_timeout": 5},
            )
            self._engine_url = url
        try:
            demand = read_demand(self._engine, **self._demand_filter())
        except sa.exc.SQLAlchemyError as exc:
            if self._db_down_since is None:
                self._db_down_since = time.monotonic()
                self.log(f"autoscaler: cannot read demand ({type(exc).__name__}); holding")
            return None
        if self._db_down_since is not None:
            self.log("autoscaler: demand readable again")
            self._db_down_since = None
        return demand

    # --- actions ----------------------------------------------------------------------
    def _scale_up(self, decision: Decision, count: int, raw: dict[str, Any]) -> None:
        started: list[str] = []
        with self.state.locked():
            data = self.state.load()
            records = data.get("processes", {})
            free = [n for n in raw["pool"] if n not in records]
            launch = data.setdefault("launch", {})
            fingerprints = data.setdefault("fingerprints", {})
            for name in free[:count]:
                spec = raw["launch"][name]
                launch[name] = spec
                fingerprints[name] = spec.get("fingerprint")
                started.append(name)
            self.state.save(data)
            for name in started:
                spec = raw["launch"][name]
                self.sup.start(
                    name,
                    spec["argv"],
                    env=spec["env"],
                    cwd=Path(spec["cwd"]),
                    ports={k: int(v) for k, v in spec.get("ports", {}).items()},
                )
                self.sup.start_companions(spec.get("companions", []))
        if started:
            names = ", ".join(started)
            self.log(f"autoscaler: scale up to {decision.desired}: {names} ({decision.reason})")
            self._event(decision, started)
        if len(started) < count:
            self.log("autoscaler: every worker name is taken (workers still draining); waiting")

    def _scale_in(self, decision: Decision, victims: list[str], config: WorkerScaling) -> None:
        drained = []
        for name in victims:
            try:
                pid = drain(self.state, name, config.drain_timeout_seconds, decision.reason)
            except RuntimeError as exc:
                self.log(f"autoscaler: cannot drain {name}: {exc}")
                continue
            drained.append(name)
            self.log(f"autoscaler: scale in to {decision.desired}: SIGTERM {name} (pid {pid})")
        if drained:
            self._event(decision, drained)

    def _reap(self, pool: list[str]) -> None:
        """Forget drained workers once their main process is gone; kill those past their
        grace period, as the kubelet does."""
        for name, info in dict(self.state.load().get("draining", {})).items():
            if name not in pool:
                continue  # another queue's worker
            if self.sup.alive(name):
                if time.time() > info["deadline"]:
                    self.log(f"autoscaler: {name} still runs at the end of its grace period: kill")
                    with contextlib.suppress(RuntimeError):
                        self.sup.kill(name)
                continue
            code = self.sup.exit_code(name)
            with self.state.locked():
                # Stragglers of the group (the log server) go with it; its tasks are done.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(int(info["pid"]), signal.SIGKILL)
                launch = self.state.load().get("launch", {}).get(name, {})
                companions = [c["name"] for c in launch.get("companions", [])]
                # Forgets the records, reaps our child; its log server goes with it.
                self.sup.stop_many([name, *companions], timeout=5)
                data = self.state.load()
                for section in ("launch", "draining", "fingerprints"):
                    data.get(section, {}).pop(name, None)
                self.state.save(data)
            took = time.time() - info["since"]
            detail = f"exit {code}" if code is not None else "exited"
            self.log(f"autoscaler: {name} drained in {took:.1f}s ({detail})")
            self._events.append(
                {"at": time.time(), "action": "drained", "workers": [name], "seconds": took}
            )

    # --- records ----------------------------------------------------------------------
    def _event(self, decision: Decision, workers: list[str]) -> None:
        self._events.append(
            {
                "at": time.time(),
                "action": str(decision.action),
                "desired": decision.desired,
                "workers": workers,
                "reason": decision.reason,
            }
        )

    def _record(
        self,
        decision: Decision,
        observation: Observation,
        raw: dict[str, Any],
        busy: dict[str, int],
    ) -> None:
        data = self.state.load()
        records = data.get("processes", {})
        draining = data.get("draining", {})
        workers = {
            name: {
                "pid": records[name]["pid"],
                "state": "draining" if name in draining else "active",
                "running_tasks": busy.get(name, 0),
                "hostname": raw["hostnames"].get(name, ""),
            }
            for name in raw["pool"]
            if name in records
        }
        self._events = self._events[-MAX_EVENTS:]
        document = {
            "at": time.time(),
            "config": asdict(self._config) if self._config else {},
            "observation": asdict(observation),
            "decision": {
                "desired": decision.desired,
                "action": str(decision.action),
                "target": decision.target,
                "window_target": decision.window_target,
                "reason": decision.reason,
            },
            "workers": workers,
            "events": self._events,
        }
        path = self.state.root / decisions_file(self.queue)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(document, indent=1))
        os.replace(tmp, path)
