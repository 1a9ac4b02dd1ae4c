"""Lifecycle: start a planned process (and its companions) unless the same one runs, run the
migrations Job, keep the watchdog, and stop everything fast without losing a running task.

`down` first stops the watchdog (nothing is restarted meanwhile). A worker that runs no task
is stopped at once; a busy one gets Celery's warm shutdown (SIGTERM to its main process
only: the process group holds the running tasks) and finishes its tasks while the
scheduler, the API servers and the databases still run, up to its grace period. Only then
does the rest stop, all together (killed after APP_STOP_SECONDS: each keeps its state in the
database), and the embedded services last.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

from airflow_platform.local.autoscaler import drain
from airflow_platform.local.mapping import ProcessSpec
from airflow_platform.local.planning import launch_record, spec_fingerprint
from airflow_platform.local.state import StateDir
from airflow_platform.local.supervisor import Supervisor

INFRA = ("postgres", "moto", "openbao", "oidc")
MIGRATION_TIMEOUT = 900.0
# Airflow components other than busy workers: their state is in the database and no task
# runs in them, so a slow graceful exit is cut short.
APP_STOP_SECONDS = 5.0


class LifecycleError(RuntimeError):
    """A step of `up` failed; the message says which and where its log is."""


class Lifecycle:
    def __init__(self, state: StateDir, sup: Supervisor, say: Callable[[str], None]) -> None:
        self.state = state
        self.sup = sup
        self.say = say

    # --- start ----------------------------------------------------------------------------
    def ensure(self, spec: ProcessSpec) -> bool:
        """Start `spec` unless the same spec already runs; True when (re)started."""
        fingerprint = spec_fingerprint(spec)
        with self.state.locked():
            known = self.state.load().get("fingerprints", {})
            if self.sup.alive(spec.name) and known.get(spec.name) == fingerprint:
                self.sup.start_companions([launch_record(c) for c in spec.companions])
                return False
            if self.sup.alive(spec.name):
                self.say(f"{spec.name}: configuration changed, restarting")
                self.sup.stop_many([spec.name, *(c.name for c in spec.companions)])
            self.start(spec)
            known[spec.name] = fingerprint
            self.state.update(fingerprints=known)
        return True

    def start(self, spec: ProcessSpec) -> None:
        self.sup.start(
            spec.name,
            spec.argv,
            env=spec.env,
            cwd=spec.cwd,
            ports={str(k): v for k, v in spec.ports.items()},
        )
        self.state.update(
            launch={**self.state.load().get("launch", {}), spec.name: launch_record(spec)}
        )
        self.sup.start_companions([launch_record(c) for c in spec.companions])

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
            fingerprint = spec_fingerprint(job)
            if self.state.load().get("migrated") == fingerprint:
                self.say(f"{job.name}: database already migrated by this rendering, skipped")
                continue
            self.say(f"{job.name}: {' '.join(job.argv[1:])}")
            record = self.sup.start(job.name, job.argv, env=job.env, cwd=job.cwd)
            child = self.sup._children[record.pid]
            try:
                code = child.wait(timeout=MIGRATION_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.sup.stop(job.name)
                raise LifecycleError(f"{job.name} did not finish in 15 minutes") from None
            self.sup.forget(job.name)
            if code != 0:
                raise LifecycleError(
                    f"{job.name} failed (exit {code}); last lines of {self.state.log(job.name)}:"
                    f"\n{self.sup.log_tail(job.name)}"
                )
            self.state.update(migrated=fingerprint)

    # --- stop -----------------------------------------------------------------------------
    def down(self) -> list[str]:
        records = self.sup.records()
        alive = {n for n in records if self.sup.alive(n)}
        self.sup.stop_many(["watchdog"])
        self._drain_workers()
        apps = [n for n in self.sup.records() if n not in (*INFRA, "watchdog")]
        self.sup.stop_many(apps, timeout=APP_STOP_SECONDS)
        self.sup.stop_many([n for n in INFRA if n in records])
        if self.state.root.exists():
            self.state.update(draining={})
        stopped = [n for n in records if n in alive]
        for name in stopped:
            self.say(f"stopped {name}")
        return stopped

    def _drain_workers(self) -> None:
        """Stop idle workers at once; drain the busy ones, each within its grace period."""
        data = self.state.load()
        pool = (data.get("autoscaling") or {}).get("pool", [])
        workers = [n for n in pool if n in data.get("processes", {})]
        busy = [n for n in workers if not self._stop_if_idle(n)]
        for name in busy:
            with contextlib.suppress(RuntimeError):  # gone meanwhile: nothing to drain
                drain(self.state, name, reason="local down")
        deadlines = {
            n: float(d["deadline"]) for n, d in self.state.load().get("draining", {}).items()
        }
        pending = [n for n in busy if n in deadlines]
        if pending:
            self.say("draining " + ", ".join(pending) + ": they finish their running tasks")
        while pending:
            pending = [n for n in pending if self.sup.alive(n) and time.time() < deadlines[n]]
            if pending:
                time.sleep(0.1)
        # Their process groups go with them: no task runs there any more.
        for name in busy:
            rec = self.sup.record(name)
            if rec is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(rec.pid, signal.SIGKILL)

    def _stop_if_idle(self, name: str) -> bool:
        """Freeze the worker's process group, look for a running task (a task process under
        one of its pool processes), and kill the group if there is none; else let it go on.
        Frozen, it cannot start a task between the look and the kill. What an idle worker
        may hold (an unstarted SQS message) lives in moto, which `down` stops too."""
        import psutil

        rec = self.sup.record(name)
        if rec is None or not self.sup.alive(name):
            return True
        try:
            os.killpg(rec.pid, signal.SIGSTOP)
        except (ProcessLookupError, PermissionError):
            return True
        try:
            pool = psutil.Process(rec.pid).children()
            running = any(p.children() for p in pool)
        except psutil.Error:
            running = False
        if running:
            os.killpg(rec.pid, signal.SIGCONT)
            return False
        os.killpg(rec.pid, signal.SIGKILL)
        return True
