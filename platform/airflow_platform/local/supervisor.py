"""Processes of the local platform, recorded by PID in the state directory.

Each process runs in its own session (process group), logs to <state>/logs/<name>.log
and is recorded with its PID and start time, so another invocation (`local down`,
`local status`) can find it again and never mistakes a recycled PID for ours.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from airflow_platform.local.state import StateDir
from airflow_platform.procs import ManagedProcess, tail

# Written to a log before each start, so readers can look at the current run only.
START_MARK = "---- airflow-platform local: starting "


@dataclass
class ProcessRecord:
    name: str
    pid: int
    create_time: float
    log: str
    argv: list[str]
    stop_signal: int = int(signal.SIGTERM)
    ports: dict[str, int] = field(default_factory=dict)


def _process(pid: int, create_time: float | None = None):  # -> psutil.Process | None
    import psutil  # local runner only; the platform image does not need it

    try:
        proc = psutil.Process(pid)
        if create_time is not None and abs(proc.create_time() - create_time) > 1.0:
            return None  # the PID was recycled by an unrelated process
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except psutil.Error:
        return None


def _own_descendants(proc, recorded: set[int]) -> list:  # -> list[psutil.Process]
    """What the process spawned for itself: its descendants, less the processes that have
    their own record (the watchdog restarts and scales components) and what those spawned;
    those are stopped through their own records, a worker after its running task."""
    import psutil

    own: list = []
    todo = [proc]
    while todo:
        with contextlib.suppress(psutil.Error):
            children = [c for c in todo.pop().children() if c.pid not in recorded]
            own += children
            todo += children
    return own


def _wait_gone(procs: list, timeout: float) -> list:
    """Wait until each process is gone or a zombie (a dead process we are not the parent
    of stays a zombie until init reaps it); returns those still running."""
    import psutil

    deadline = time.monotonic() + timeout
    while True:
        running = []
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    running.append(proc)
        if not running or time.monotonic() > deadline:
            return running
        time.sleep(0.05)


class Supervisor:
    def __init__(self, state: StateDir) -> None:
        self.state = state
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    # --- records ------------------------------------------------------------------------
    def records(self) -> dict[str, ProcessRecord]:
        raw = self.state.load().get("processes", {})
        return {name: ProcessRecord(**rec) for name, rec in raw.items()}

    def _store(self, record: ProcessRecord | None, name: str) -> None:
        with self.state.locked():
            data = self.state.load()
            procs = data.setdefault("processes", {})
            if record is None:
                procs.pop(name, None)
            else:
                procs[name] = asdict(record)
            self.state.save(data)

    def record(self, name: str) -> ProcessRecord | None:
        return self.records().get(name)

    # --- lifecycle ----------------------------------------------------------------------
    def start(
        self,
        name: str,
        argv: Sequence[str],
        env: dict[str, str],
        cwd: Path | None = None,
        stop_signal: int = signal.SIGTERM,
        ports: dict[str, int] | None = None,
    ) -> ProcessRecord:
        log = self.state.log(name)
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as fh:
            fh.write(
                f"\n{START_MARK}{name} at {time.strftime('%Y-%m-%d %H:%M:%S')} ----\n".encode()
            )
        managed = ManagedProcess(name, argv, log, env=env, cwd=cwd).start()
        assert managed.proc is not None
        self._children[managed.pid] = managed.proc
        proc = _process(managed.pid)
        record = ProcessRecord(
            name=name,
            pid=managed.pid,
            create_time=proc.create_time() if proc else time.time(),
            log=str(log),
            argv=list(argv),
            stop_signal=int(stop_signal),
            ports=dict(ports or {}),
        )
        self._store(record, name)
        return record

    def start_companions(self, companions: list[dict]) -> None:
        """Start the companions of a process (a worker's log server) that are not running;
        each is a launch record (planning.launch_record)."""
        for spec in companions:
            if not self.alive(spec["name"]):
                self.start(
                    spec["name"],
                    spec["argv"],
                    env=spec["env"],
                    cwd=Path(spec["cwd"]) if spec.get("cwd") else None,
                    ports={k: int(v) for k, v in spec.get("ports", {}).items()},
                )

    def alive(self, name: str) -> bool:
        rec = self.record(name)
        if rec is None:
            return False
        child = self._children.get(rec.pid)
        if child is not None and child.poll() is not None:
            return False
        return _process(rec.pid, rec.create_time) is not None

    def exit_code(self, name: str) -> int | None:
        rec = self.record(name)
        child = self._children.get(rec.pid) if rec else None
        return child.poll() if child is not None else None

    def log_tail(self, name: str, lines: int = 40) -> str:
        return tail(self.state.log(name), lines)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> int:
        """Signal the process and everything it spawned at once, as when a container dies
        (e.g. kill -9 a scheduler); the record stays, so the watchdog restarts it."""
        rec = self.record(name)
        proc = _process(rec.pid, rec.create_time) if rec else None
        if rec is None or proc is None:
            raise RuntimeError(f"{name} is not running")
        import psutil

        family = [proc, *proc.children(recursive=True)]
        for member in family:
            with contextlib.suppress(psutil.Error):
                member.send_signal(sig)
        return rec.pid

    def stop(self, name: str, timeout: float = 20.0) -> None:
        """Stop one process and everything it spawned, by PID; forget its record."""
        self.stop_many([name], timeout)

    def stop_many(self, names: list[str], timeout: float = 20.0) -> None:
        """Stop processes together (each with its own stop signal, to its whole group), wait
        for them and what they spawned (not for other recorded processes they started), kill
        what is left at `timeout`; forget their records."""
        import psutil

        with self.state.locked():  # the watchdog must not restart them meanwhile
            families: list = []
            every = self.records()
            records = [every[n] for n in names if n in every]
            recorded = {r.pid for r in every.values()}
            for rec in records:
                proc = _process(rec.pid, rec.create_time)
                if proc is None:
                    continue
                families += [proc, *_own_descendants(proc, recorded)]
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(rec.pid, rec.stop_signal)
                with contextlib.suppress(psutil.Error):
                    proc.send_signal(rec.stop_signal)
            lingering = _wait_gone(families, timeout)
            for leftover in lingering:
                with contextlib.suppress(psutil.Error):
                    leftover.kill()
            _wait_gone(lingering, 5)
            for rec in records:
                child = self._children.pop(rec.pid, None)
                if child is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        child.wait(timeout=1)
                self._store(None, rec.name)

    def forget(self, name: str) -> None:
        self._store(None, name)
