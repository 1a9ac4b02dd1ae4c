"""Time of `airflow-platform migrate check` on generated MWAA 2.x DAG trees.

For each size (100 and 1,000 DAG files by default) a tree is written once: most files
clean Airflow 3 DAGs, one in ten an Airflow 2 file (schedule_interval, airflow.datasets,
a removed context key in a template), plus a requirements.txt with three small pins.
Each run is the whole check (ruff, the static rules, the requirements resolution and
install, one real DagBag import per file, the reports), timed from the outside:

  cold   a new requirements cache: uv resolves, downloads and installs
  warm   the cache of the previous run: the installed tree is linked back

Prints the median and the spread (min-max) over --runs runs (at least 3).
Run: .venv/bin/python bench/migrate/run.py [--sizes 100 1000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def spread(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):7.1f} s  (min {min(values):.1f}, max {max(values):.1f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = max(3, args.runs)
    print(f"migrate check, {os.cpu_count()} CPU(s), {runs} runs each")
    with tempfile.TemporaryDirectory(prefix="bench-migrate-") as tmp:
        base = Path(tmp)
        for size in args.sizes:
            dags = write_tree(base / f"tree-{size}", size)
            cold, warm = [], []
            summary: dict = {}
            for i in range(runs):
                cache = base / f"cache-{size}-{i}"  # a new cache: a cold run
                seconds, summary = one_run(dags, cache, base)
                cold.append(seconds)
                seconds, summary = one_run(dags, cache, base)  # the same cache: warm
                warm.append(seconds)
                print(
                    f"  {size} files, run {i + 1}: cold {cold[-1]:.1f} s, warm {warm[-1]:.1f} s",
                    flush=True,
                )
            print(
                f"{size:>5} DAG files  cold {spread(cold)}\n"
                f"{'':>5}            warm {spread(warm)}  "
                f"({size / statistics.median(warm):.1f} files/s warm; "
                f"{summary['blockers']} blockers, {summary['warnings']} warnings)",
                flush=True,
            )


if __name__ == "__main__":
    main()
