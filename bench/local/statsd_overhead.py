"""StatsD's cost on the 200-task fan-out (printed, never asserted).

The same local platform state is started alternately with Airflow's StatsD on (sent to a
UDP socket this script drains, as a node agent or statsd_exporter would) and off
(metrics.statsd.enabled: false), one fan-out per start, interleaved so that the machine's
background load falls on both alike.

Run: .venv/bin/python bench/local/statsd_overhead.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import sys
import tempfile
import threading
from pathlib import Path

import yaml

from airflow_platform.local.api import AirflowApi
from airflow_platform.local.platform import LocalPlatform

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import FANOUT, fanout, say  # the fan-out measurement of bench/local/run.py


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="fan-out runs per setting")
    parser.add_argument("--first", choices=("on", "off"), default="on", help="setting run first")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="airflow-platform-bench-statsd-"))
    root.chmod(0o755)  # PostgreSQL runs as `nobody` when we are root
    state = root / "state"
    drain = Drain()
    settings = {
        "on": {"metrics": {"statsd": {"enabled": True, "host": "127.0.0.1", "port": drain.port}}},
        "off": {"metrics": {"statsd": {"enabled": False}}},
    }
    files = {}
    for name, values in settings.items():
        files[name] = root / f"statsd-{name}.yaml"
        files[name].write_text(yaml.safe_dump(values))
    walls: dict[str, list[float]] = {"on": [], "off": []}
    firsts: dict[str, list[float]] = {"on": [], "off": []}
    try:
        for i in range(args.runs):
            pair = ("on", "off") if args.first == "on" else ("off", "on")
            for name in pair if i % 2 == 0 else pair[::-1]:
                lp = LocalPlatform(state, values_files=[files[name]])
                lp.up(timeout=900)
                before = drain.packets
                try:
                    wall, first = fanout(lp.api())
                except SystemExit as failed:  # a failed run is reported, not measured
                    say(f"    run {i + 1} statsd {name}: {failed}")
                    say(f"    {failed_task_log(lp.api())}")
                    lp.down()
                    continue
                lp.down()
                walls[name].append(wall)
                firsts[name].append(first)
                say(
                    f"    run {i + 1} statsd {name:3s}: wall {wall:.1f}s, first task "
                    f"{first:.2f}s, {drain.packets - before} StatsD packets"
                )
        say("\n== figures")
        for name in ("on", "off"):
            if not walls[name]:
                say(f"statsd {name:3s}: no successful run")
                continue
            say(
                f"statsd {name:3s}: wall median {statistics.median(walls[name]):.1f}s "
                f"{sorted(round(w, 1) for w in walls[name])}, first task median "
                f"{statistics.median(firsts[name]):.2f}s"
            )
        if not walls["on"] or not walls["off"]:
            return
        ratio = statistics.median(walls["on"]) / statistics.median(walls["off"])
        say(f"wall on/off: x{ratio:.3f}")
    finally:
        drain.close()
        LocalPlatform(state).down(wipe=True)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
