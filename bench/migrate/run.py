"""Time of `airflow-platform migrate check` on generated MWAA 2.x DAG trees.

For each size (100 and 1,000 DAG files by default) a tree is written once: most files
clean Airflow 3 DAGs, one in ten an Airflow 2 file (schedule_interval, airflow.datasets,
a removed context key in a template), plus a requirements.txt with three small pins.
Each run is the whole check (ruff, the static rules, the requirements resolution and
install, one real DagBag import per file, the reports), timed from the outside:

  cold   a new requirements cache: uv resolves, downloads and installs
  warm   the cache of the previous run: the installed tree is linked back

Cold and warm runs alternate (bench/_runner.py); prints the median and the spread
(min-max) over --runs runs of each (at least 3). Writes bench/results/migrate.txt.
Run: .venv/bin/python bench/migrate/run.py [--sizes 100 1000] [--runs 3]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _runner import Report, interleave

CLI = str(Path(sys.executable).parent / "airflow-platform")
REQUIREMENTS = "pyfiglet==1.0.2\nboltons==26.2.0\niso8601==2.1.0\n"

CLEAN = """\
from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, task

with DAG("clean_{n}", schedule="@daily", start_date=datetime(2024, 1, 1), catchup=False):
    @task
    def step(ds=None):
        return ds

    BashOperator(task_id="echo", bash_command="echo {{{{ ds }}}}") >> step()
"""
LEGACY = """\
from datetime import datetime

from airflow import DAG
from airflow.operators.bash import BashOperator

with DAG("legacy_{n}", schedule_interval="@daily", start_date=datetime(2024, 1, 1)):
    BashOperator(task_id="echo", bash_command="echo {{{{ execution_date }}}}")
"""


def write_tree(root: Path, size: int) -> Path:
    dags = root / "dags"
    dags.mkdir(parents=True)
    for n in range(size):
        text = LEGACY if n % 10 == 0 else CLEAN
        (dags / f"dag_{n:05d}.py").write_text(text.format(n=n))
    (root / "requirements.txt").write_text(REQUIREMENTS)
    return dags


def one_run(dags: Path, cache: Path, out: Path) -> tuple[float, dict]:
    report = out / "report.json"
    started = time.perf_counter()
    proc = subprocess.run(
        [
            CLI,
            "migrate",
            "check",
            str(dags),
            "--cache-dir",
            str(cache),
            "--json",
            str(report),
            "--no-details",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise SystemExit(f"migrate check failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return seconds, json.loads(report.read_text())["summary"]


def measure(size: int, base: Path, runs: int, report: Report) -> None:
    """Cold and warm runs of one tree size, interleaved."""
    dags = write_tree(base / f"tree-{size}", size)
    serial = itertools.count()
    caches: list[Path] = []
    summary: dict = {}

    def cold() -> float:
        caches.append(base / f"cache-{size}-{next(serial)}")  # a new cache: cold
        seconds, found = one_run(dags, caches[-1], base)
        summary.update(found)
        return seconds

    def warm() -> float:
        if not caches:
            cold()
        seconds, found = one_run(dags, caches[-1], base)  # a used cache: warm
        summary.update(found)
        return seconds

    out = interleave({"cold": cold, "warm": warm}, runs, report.say)
    report.figure(f"migrate.{size}.cold", f"{size} DAG files, cold", out["cold"]["seconds"],
                  digits=1)  # fmt: skip
    report.figure(f"migrate.{size}.warm", f"{size} DAG files, warm", out["warm"]["seconds"],
                  digits=1)  # fmt: skip
    rate = size / statistics.median(out["warm"]["seconds"])
    report.say(f"    ({rate:.1f} files/s warm; {summary.get('blockers')} blockers, "
               f"{summary.get('warnings')} warnings)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    report = Report("migrate")
    report.say(f"migrate check, {os.cpu_count()} CPU(s), {max(3, args.runs)} runs each")
    with tempfile.TemporaryDirectory(prefix="bench-migrate-") as tmp:
        for size in args.sizes:
            measure(size, Path(tmp), args.runs, report)
    report.write()


if __name__ == "__main__":
    main()
