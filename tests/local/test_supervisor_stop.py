"""Stopping a supervised process stops what it spawned, and leaves alone the processes it
started with records of their own (the watchdog starts workers that way: they are stopped
through their own records, after a running task had its chance to finish)."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
from pathlib import Path

import psutil

from airflow_platform.local.state import StateDir
from airflow_platform.local.supervisor import Supervisor
from airflow_platform.procs import wait_until

# Like the watchdog: starts a recorded process through the supervisor, and two of its own,
# one in its process group and one in a group of its own (as Airflow starts a task process).
PARENT = textwrap.dedent(
    """
    import os, subprocess, sys, time
    from pathlib import Path
    from airflow_platform.local.state import StateDir
    from airflow_platform.local.supervisor import Supervisor
    state, out = Path(sys.argv[1]), Path(sys.argv[2])
    sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
    recorded = Supervisor(StateDir.at(state)).start("recorded", sleeper, env=dict(os.environ))
    same = subprocess.Popen(sleeper)
    apart = subprocess.Popen(sleeper, start_new_session=True)
    out.write_text(f"{recorded.pid} {same.pid} {apart.pid}")
    time.sleep(600)
    """
)


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def test_stop_spares_only_the_processes_with_their_own_record(tmp_path: Path) -> None:
    state = StateDir.at(tmp_path / "state")
    sup = Supervisor(state)
    pids = tmp_path / "pids"
    argv = [sys.executable, "-c", PARENT, str(state.root), str(pids)]
    sup.start("parent", argv, env=dict(os.environ))
    wait_until(lambda: pids.exists() and pids.read_text(), 60, "the parent's children")
    recorded, same, apart = (psutil.Process(int(pid)) for pid in pids.read_text().split())
    try:
        sup.stop_many(["parent"], timeout=2)
        assert not _running(same)
        assert not _running(apart)  # not signalled with the group: killed at the timeout
        assert _running(recorded)
        assert sup.record("parent") is None and sup.record("recorded") is not None
    finally:
        sup.stop_many(["recorded"], timeout=5)
        for proc in (recorded, same, apart):
            if _running(proc):
                os.kill(proc.pid, signal.SIGKILL)
