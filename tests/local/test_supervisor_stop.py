"""Stopping a supervised process stops what it spawned in its own process group, and leaves
alone what it started as a process of its own (the watchdog starts workers that way: they
are stopped through their own records, after a running task had its chance to finish)."""

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

PARENT = textwrap.dedent(
    """
    import subprocess, sys, time
    from pathlib import Path
    out = Path(sys.argv[1])
    sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
    same = subprocess.Popen(sleeper)
    own = subprocess.Popen(sleeper, start_new_session=True)
    out.write_text(f"{same.pid} {own.pid}")
    time.sleep(600)
    """
)


def test_stop_spares_a_child_in_a_group_of_its_own(tmp_path: Path) -> None:
    sup = Supervisor(StateDir.at(tmp_path / "state"))
    pids = tmp_path / "pids"
    sup.start("parent", [sys.executable, "-c", PARENT, str(pids)], env=dict(os.environ))
    wait_until(lambda: pids.exists() and pids.read_text(), 30, "the parent's children")
    same, own = (psutil.Process(int(pid)) for pid in pids.read_text().split())
    try:
        sup.stop_many(["parent"], timeout=20)
        assert not same.is_running() or same.status() == psutil.STATUS_ZOMBIE
        assert own.is_running() and own.status() != psutil.STATUS_ZOMBIE
        assert sup.record("parent") is None
    finally:
        if own.is_running():
            os.kill(own.pid, signal.SIGKILL)
