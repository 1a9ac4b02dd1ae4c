"""Figures of the local platform (printed, never asserted):

1. The 200-task fan-out DAG with the platform's configuration and with Airflow's stock
   configuration on the same topology (stock.py says exactly what differs), interleaved:
   each round starts the platform with one configuration (`local up`, warm), runs the
   fan-out once and stops it (`local down`), then the other; wall time, trigger -> first
   task, where the time goes (fanout.py), and the warm up and down times.
2. S3 put -> DAG visible in the REST API over --uploads uploads.
3. `local up` cold (fresh state: initdb, migrations), --cold-runs times.

Run: .venv/bin/python bench/local/run.py [--runs 3] [--uploads 20] [--cold-runs 3]
Writes bench/results/local.txt.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from _runner import Report, interleave  # noqa: E402
from fanout import GROUPS, run_fanout  # noqa: E402
from stock import STOCK_OVERRIDES, STOCK_VALUES, differences  # noqa: E402

from airflow_platform.local.api import AirflowApi  # noqa: E402
from airflow_platform.local.platform import LocalPlatform  # noqa: E402
from airflow_platform.local.services import aws_clients  # noqa: E402
from airflow_platform.procs import wait_until  # noqa: E402

REPO = HERE.parents[1]
HELLO_TEMPLATE = (REPO / "dags" / "examples" / "example_hello.py").read_text()


def new_root(prefix: str) -> Path:
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)  # PostgreSQL runs as `nobody` when we are root
    return root


def upload_latency(lp: LocalPlatform, api: AirflowApi, uploads: int) -> list[float]:
    data = lp.state.load()
    s3 = aws_clients(data["moto_endpoint"])[0]
    latencies = []
    for _ in range(uploads):
        dag_id = f"bench_upload_{uuid.uuid4().hex[:8]}"
        body = HELLO_TEMPLATE.replace('dag_id="example_hello"', f'dag_id="{dag_id}"')
        began = time.monotonic()
        s3.put_object(
            Bucket=data["bucket"], Key=f"{data['dags_prefix']}bench/{dag_id}.py", Body=body
        )
        wait_until(lambda d=dag_id: api.dag(d), 600, f"{dag_id} in the API", interval=0.05)
        latencies.append(time.monotonic() - began)
    return latencies


def one_start(lp: LocalPlatform) -> dict[str, float]:
    """Warm up, one fan-out, down: the figures of one round of one configuration."""
    began = time.monotonic()
    lp.up(timeout=900)
    up = time.monotonic() - began
    try:
        figures = run_fanout(lp, lp.api())
    finally:
        began = time.monotonic()
        lp.down()
        down = time.monotonic() - began
    return {**figures, "up_warm": up, "down": down}


def cold_up(runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        root = new_root("airflow-platform-bench-cold-")
        lp = LocalPlatform(root / "state")
        try:
            began = time.monotonic()
            lp.up(timeout=900)
            times.append(time.monotonic() - began)
        finally:
            lp.down(wipe=True)
            shutil.rmtree(root, ignore_errors=True)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="fan-out runs per configuration")
    parser.add_argument("--uploads", type=int, default=20)
    parser.add_argument("--cold-runs", type=int, default=3, help="0: skip the cold up figure")
    args = parser.parse_args()
    report = Report("local")
    say = report.say
    say("== the fan-out baseline: " + STOCK_VALUES.name + " and stock.py")
    for line in differences():
        say("    " + line)

    root = new_root("airflow-platform-bench-")
    state = root / "state"
    platform = LocalPlatform(state)
    stock = LocalPlatform(state, values_files=[STOCK_VALUES], overrides=STOCK_OVERRIDES)
    try:
        say("== first start (fresh state), S3 put -> DAG visible in the API")
        platform.up(timeout=900)
        lat = upload_latency(platform, platform.api(), args.uploads)
        platform.down()

        say(f"== 200-task fan-out, interleaved, {args.runs} runs each")
        runs = interleave({"platform": lambda: one_start(platform),
                           "stock": lambda: one_start(stock)}, args.runs, say)  # fmt: skip
        cold = cold_up(args.cold_runs) if args.cold_runs else []
    finally:
        LocalPlatform(state).down(wipe=True)
        shutil.rmtree(root, ignore_errors=True)

    p, s = runs["platform"], runs["stock"]
    say("\n== figures (medians over the runs; spread min-max)")
    say("fan-out of 200 no-op tasks, 1..3 workers of 5 tasks each (mw1.small)")
    report.ratio("fanout.wall.ratio", "platform faster than stock, wall", s["wall"], p["wall"])
    report.figure("fanout.wall.platform", "wall, platform", p["wall"], digits=1)
    report.figure("fanout.wall.stock", "wall, stock", s["wall"], digits=1)
    report.ratio("fanout.first_task.ratio", "platform faster than stock, trigger -> first task",
                 s["first_task"], p["first_task"])  # fmt: skip
    report.figure("fanout.first_task.platform", "trigger -> first task, platform", p["first_task"])
    report.figure("fanout.first_task.stock", "trigger -> first task, stock", s["first_task"])
    say("where the time goes (per configuration)")
    for name, figures in runs.items():
        for figure in ("first_queued", "queued_to_start", "run"):
            report.figure(f"fanout.{figure}.{name}", f"{figure}, {name}", figures[figure])
        report.figure(f"fanout.cpu_busy.{name}", f"machine CPU busy during the run, {name}",
                      [100 * v for v in figures["cpu_busy"]], unit="%", digits=0)  # fmt: skip
        for group in GROUPS:
            report.figure(f"fanout.cpu_{group}.{name}", f"CPU seconds of {group}, {name}",
                          figures[f"cpu_{group}"], digits=1)  # fmt: skip
    report.figure("local.up_warm", "local up, warm (state kept)", p["up_warm"] + s["up_warm"],
                  digits=1)  # fmt: skip
    report.figure("local.down", "local down after a fan-out", p["down"] + s["down"], digits=1)
    if cold:
        report.figure("local.up_cold", "local up, cold (fresh state)", cold, digits=1)
    report.figure("local.upload_visible", f"S3 put -> DAG visible, {len(lat)} uploads", lat)
    ordered = sorted(lat)
    report.value("local.upload_visible.p95", "S3 put -> DAG visible, p95",
                 ordered[max(0, round(0.95 * len(ordered)) - 1)], "s")  # fmt: skip
    say(f"(median of the uploads {statistics.median(lat):.2f} s; goal p95 <= 5 s)")
    report.write()


if __name__ == "__main__":
    sys.exit(main())
