"""Figures of the local platform (printed, never asserted):

1. `local up` cold (fresh state: initdb, migrations) and warm (state kept) until every
   component is healthy.
2. S3 put -> DAG visible in the REST API, p50/p95 over 20 uploads.
3. The 200-task fan-out DAG: wall time and trigger -> first task start, with our chart
   defaults and with Airflow's stock scheduler/celery settings (stock-values.yaml) on
   the same stack, as a ratio.

Run: .venv/bin/python bench/local/run.py [--runs N] [--skip-stock]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

from airflow_platform.local.api import AirflowApi
from airflow_platform.local.platform import LocalPlatform
from airflow_platform.local.services import aws_clients
from airflow_platform.procs import wait_until

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
STOCK_VALUES = HERE / "stock-values.yaml"
FANOUT = "example_fanout_200"
HELLO_TEMPLATE = (REPO / "dags" / "examples" / "example_hello.py").read_text()


def say(msg: str) -> None:
    print(msg, flush=True)


def ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def timed_up(lp: LocalPlatform) -> float:
    began = time.monotonic()
    lp.up(timeout=900)
    return time.monotonic() - began


def upload_latency(lp: LocalPlatform, api: AirflowApi, uploads: int) -> list[float]:
    data = lp.state.load()
    s3 = aws_clients(data["moto_endpoint"])[0]
    latencies = []
    for i in range(uploads):
        dag_id = f"bench_upload_{uuid.uuid4().hex[:8]}"
        body = HELLO_TEMPLATE.replace('dag_id="example_hello"', f'dag_id="{dag_id}"')
        began = time.monotonic()
        s3.put_object(
            Bucket=data["bucket"], Key=f"{data['dags_prefix']}bench/{dag_id}.py", Body=body
        )
        wait_until(lambda d=dag_id: api.dag(d), 600, f"{dag_id} in the API", interval=0.05)
        latencies.append(time.monotonic() - began)
        say(f"    upload {i + 1:2d}: {latencies[-1]:.2f}s")
    return latencies


def fanout(api: AirflowApi) -> tuple[float, float]:
    """(wall seconds trigger -> last task end, seconds trigger -> first task start)."""
    wait_until(lambda: api.dag(FANOUT), 300, f"{FANOUT} in the API", interval=0.5)
    api.unpause(FANOUT)
    run_id = f"bench_{uuid.uuid4().hex[:8]}"
    triggered = time.time()
    api.trigger(FANOUT, run_id)

    def done() -> bool:
        return api.run(FANOUT, run_id)["state"] in ("success", "failed")

    wait_until(done, 1800, f"{FANOUT} run", interval=0.5)
    run = api.run(FANOUT, run_id)
    tis = api.task_instances(FANOUT, run_id)
    if run["state"] != "success":
        bad = [t["task_id"] for t in tis if t["state"] != "success"]
        raise SystemExit(f"{FANOUT} run {run_id} ended {run['state']}: {bad[:10]}")
    first = min(ts(t["start_date"]) for t in tis)
    last = max(ts(t["end_date"]) for t in tis)
    return last - triggered, first - triggered


def fanout_series(api: AirflowApi, runs: int, label: str) -> tuple[float, float]:
    walls, firsts = [], []
    for i in range(runs):
        wall, first = fanout(api)
        walls.append(wall)
        firsts.append(first)
        say(f"    {label} run {i + 1}: wall {wall:.1f}s, trigger -> first task {first:.2f}s")
    return statistics.median(walls), statistics.median(firsts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2, help="fan-out runs per configuration")
    parser.add_argument("--uploads", type=int, default=20)
    parser.add_argument("--skip-stock", action="store_true")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="airflow-platform-bench-"))
    root.chmod(0o755)  # PostgreSQL runs as `nobody` when we are root
    state = root / "state"
    lp = LocalPlatform(state)
    try:
        say("== local up")
        cold = timed_up(lp)
        say(f"    cold (fresh state, initdb + migrations): {cold:.1f}s")
        lp.down()
        warm = timed_up(lp)
        say(f"    warm (state kept): {warm:.1f}s   goal <= 30s")
        api = lp.api()

        say(f"== S3 put -> DAG visible in the API ({args.uploads} uploads)")
        lat = upload_latency(lp, api, args.uploads)
        p50, p95 = statistics.median(lat), percentile(lat, 95)

        say(f"== {FANOUT}: our chart defaults")
        ours = fanout_series(api, args.runs, "ours")
        stock = None
        if not args.skip_stock:
            say(f"== {FANOUT}: Airflow's stock scheduler/celery settings ({STOCK_VALUES.name})")
            lp.down()
            stock_lp = LocalPlatform(state, values_files=[STOCK_VALUES])
            stock_lp.up(timeout=900)
            stock = fanout_series(stock_lp.api(), args.runs, "stock")
            stock_lp.down()

        say("\n== figures")
        say(f"local up cold: {cold:.1f}s   warm: {warm:.1f}s (goal warm <= 30s)")
        say(f"S3 put -> DAG visible: p50 {p50:.2f}s  p95 {p95:.2f}s (goal p95 <= 5s)")
        say(f"fan-out 200 ours:  wall {ours[0]:.1f}s  trigger->first task {ours[1]:.2f}s")
        if stock:
            say(f"fan-out 200 stock: wall {stock[0]:.1f}s  trigger->first task {stock[1]:.2f}s")
            say(
                f"speed-up ours vs stock: wall x{stock[0] / ours[0]:.2f}, "
                f"first task x{stock[1] / ours[1]:.2f} (goal >= 1.5x)"
            )
    finally:
        LocalPlatform(state).down(wipe=True)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
