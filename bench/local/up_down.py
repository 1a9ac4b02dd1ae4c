"""`local up` warm and `local down` with idle workers (printed, never asserted).

One platform with `--workers N` workers (minWorkers = maxWorkers = N, so the autoscaler
keeps them all, idle) is brought up cold once (not measured); then, `--runs` times: `down`
with every worker idle, then `up` warm (state kept: database migrated, rendering unchanged)
until every component is healthy. Prints medians and spreads.

Run: .venv/bin/python bench/local/up_down.py [--runs 3] [--workers 3]
Writes bench/results/local-up-down.txt.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent)]

from _runner import Report  # noqa: E402

from airflow_platform.local.platform import LocalPlatform  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=3)
    args = parser.parse_args()
    report = Report("local-up-down")
    say = report.say
    root = Path(tempfile.mkdtemp(prefix="airflow-platform-bench-updown-"))
    root.chmod(0o755)
    values = root / "workers.yaml"
    values.write_text(f"workers: {{minWorkers: {args.workers}, maxWorkers: {args.workers}}}\n")
    lp = LocalPlatform(root / "state", values_files=[values])
    ups: list[float] = []
    downs: list[float] = []
    try:
        began = time.monotonic()
        lp.up()
        say(f"cold up (not compared): {time.monotonic() - began:.1f} s")
        for run in range(args.runs):
            began = time.monotonic()
            lp.down()
            downs.append(time.monotonic() - began)
            began = time.monotonic()
            lp.up()
            ups.append(time.monotonic() - began)
            say(f"run {run + 1}: down {downs[-1]:.1f} s ({args.workers} idle workers), "
                f"up warm {ups[-1]:.1f} s")  # fmt: skip
    finally:
        lp.down()
        shutil.rmtree(root, ignore_errors=True)
    report.figure("local.down_idle", f"local down, {args.workers} idle workers", downs, digits=1)
    report.figure("local.up_warm", "local up, warm (state kept)", ups, digits=1)
    report.write()


if __name__ == "__main__":
    main()
