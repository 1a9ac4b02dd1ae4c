"""StatsD's cost on the 200-task fan-out (printed, never asserted).

The same local platform state is started alternately with Airflow's StatsD on (sent to a
UDP socket this script drains, as a node agent or statsd_exporter would) and off
(metrics.statsd.enabled: false), one fan-out per start, interleaved (bench/_runner.py) so
that the machine's background load falls on both alike.

Run: .venv/bin/python bench/local/statsd_overhead.py [--runs 3]
Writes bench/results/statsd.txt.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from _runner import Report, interleave  # noqa: E402
from fanout import FANOUT, run_fanout  # noqa: E402

from airflow_platform.local.api import AirflowApi  # noqa: E402
from airflow_platform.local.platform import LocalPlatform  # noqa: E402


class Drain:
    """A UDP socket on 127.0.0.1 that counts the StatsD packets it receives."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.5)
        self.port = int(self.sock.getsockname()[1])
        self.packets = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sock.recv(65535)
                self.packets += 1
            except TimeoutError:
                continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


def failed_task_log(api: AirflowApi) -> str:
    """The end of the log of the fan-out's first failed task (why a run failed)."""
    runs = api.get(f"/api/v2/dags/{FANOUT}/dagRuns?order_by=-start_date&limit=1")["dag_runs"]
    run_id = runs[0]["dag_run_id"]
    for ti in api.task_instances(FANOUT, run_id):
        if ti["state"] == "failed":
            path = f"/api/v2/dags/{FANOUT}/dagRuns/{run_id}/taskInstances/{ti['task_id']}"
            content = api.get(f"{path}/logs/{max(ti['try_number'], 1)}")
            return json.dumps(content)[-1500:]
    return "no failed task"


def one_start(lp: LocalPlatform, drain: Drain) -> dict[str, float]:
    """Warm up, one fan-out, down; a failed run ends the bench with its task's log."""
    began = time.monotonic()
    lp.up(timeout=900)
    up = time.monotonic() - began
    before = drain.packets
    try:
        figures = run_fanout(lp, lp.api())
    except SystemExit as failed:
        raise SystemExit(f"{failed}\n{failed_task_log(lp.api())}") from None
    finally:
        lp.down()
    return {**figures, "up_warm": up, "statsd_packets": float(drain.packets - before)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="fan-out runs per setting")
    args = parser.parse_args()
    report = Report("statsd")
    root = Path(tempfile.mkdtemp(prefix="airflow-platform-bench-statsd-"))
    root.chmod(0o755)  # PostgreSQL runs as `nobody` when we are root
    state = root / "state"
    drain = Drain()
    settings = {
        "on": {"metrics": {"statsd": {"enabled": True, "host": "127.0.0.1", "port": drain.port}}},
        "off": {"metrics": {"statsd": {"enabled": False}}},
    }
    platforms = {}
    for name, values in settings.items():
        path = root / f"statsd-{name}.yaml"
        path.write_text(yaml.safe_dump(values))
        platforms[name] = LocalPlatform(state, values_files=[path])
    try:
        report.say("== first start (fresh state)")
        platforms["off"].up(timeout=900)
        platforms["off"].down()
        report.say(f"== 200-task fan-out, StatsD on and off, interleaved, {args.runs} runs each")
        runs = interleave(
            {name: (lambda lp=lp: one_start(lp, drain)) for name, lp in platforms.items()},
            args.runs,
            report.say,
        )
    finally:
        drain.close()
        LocalPlatform(state).down(wipe=True)
        shutil.rmtree(root, ignore_errors=True)
    on, off = runs["on"], runs["off"]
    report.say("\n== figures (medians over the runs; spread min-max)")
    report.ratio("statsd.wall.on_over_off", "wall with StatsD on / off", on["wall"], off["wall"])
    report.figure("statsd.wall.on", "wall, StatsD on", on["wall"], digits=1)
    report.figure("statsd.wall.off", "wall, StatsD off", off["wall"], digits=1)
    report.figure("statsd.first_task.on", "trigger -> first task, StatsD on", on["first_task"])
    report.figure("statsd.first_task.off", "trigger -> first task, StatsD off", off["first_task"])
    report.figure("statsd.packets.on", "StatsD packets per fan-out, on", on["statsd_packets"],
                  unit="packets", digits=0)  # fmt: skip
    report.write()


if __name__ == "__main__":
    sys.exit(main())
