"""S3 put -> DAG visible in the REST API on the chart's defaults, with 1,000 DAG files in the
bucket (printed, never asserted).

The local platform runs the chart's values (values-local.yaml sets no parsing interval): the
DAG processor lists its folder every 300 s (MWAA's refresh_interval) and re-parses an
unchanged file every 300 s (MWAA: 30 s); what makes a new or changed file visible is the parse
request the dag-processor's dagsync sidecar writes after each sync. Prints:

1. the DAG processor's CPU with the 1,000 files parsed and nothing uploaded (% of one core,
   its process and the parsing processes it forks, over --idle-seconds), and its dagsync
   sidecar's;
2. S3 put -> visible, alternating a new file and a change to one of the 1,000 (the new tag
   shown by the API), --samples in all: each sample, then p50/p95/min/max per kind and overall.

The idle CPU is measured over --idle-windows windows (median and spread). With
--reparse-interval N the chart's dag_processor.min_file_process_interval is overridden (30 =
MWAA's pace), to reproduce what the chart's default saves. Writes
bench/results/dagsync-visibility.txt (dagsync-visibility-reparse-N.txt with the option).

Run: .venv/bin/python bench/dagsync/visibility.py [--samples 20] [--files 1000]
     [--idle-seconds 60] [--idle-windows 3] [--reparse-interval N] [--keep]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import yaml

from airflow_platform.local.api import AirflowApi
from airflow_platform.local.platform import LocalPlatform
from airflow_platform.local.services import aws_clients
from airflow_platform.procs import wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _runner import Report

SEED_DIR = "bench_visibility"
DAG_SOURCE = """
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG(dag_id="{dag_id}", schedule=None, tags=["{tag}"]):
    EmptyOperator(task_id="only")
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def describe(values: list[float]) -> str:
    return (
        f"p50 {percentile(values, 50):.2f}s  p95 {percentile(values, 95):.2f}s  "
        f"min {min(values):.2f}s  max {max(values):.2f}s  "
        f"stdev {statistics.pstdev(values):.2f}s  (n={len(values)})"
    )


def total_dags(api: AirflowApi) -> int:
    return int(api.get("/api/v2/dags?limit=1")["total_entries"])


def pid_of(lp: LocalPlatform, component: str) -> int:
    data = lp.state.load()
    for name, launch in data.get("launch", {}).items():
        if launch.get("component", "").startswith(component):
            return int(data["processes"][name]["pid"])
    raise SystemExit(f"no running {component} in {lp.state.root}")


def cpu_seconds(proc: psutil.Process) -> float:
    """CPU of a process, its reaped children and its live descendants."""
    t = proc.cpu_times()
    total = t.user + t.system + t.children_user + t.children_system
    for child in proc.children(recursive=True):
        try:
            c = child.cpu_times()
            total += c.user + c.system
        except psutil.Error:  # exited meanwhile: counted in its parent's children_* next
            pass
    return total


def idle_cpu(lp: LocalPlatform, seconds: float) -> dict[str, float]:
    procs = {c: psutil.Process(pid_of(lp, c)) for c in ("dag-processor", "dagsync")}
    before = {c: cpu_seconds(p) for c, p in procs.items()}
    began = time.monotonic()
    time.sleep(seconds)  # the measurement window itself, not a wait for a condition
    took = time.monotonic() - began
    return {c: 100 * (cpu_seconds(p) - before[c]) / took for c, p in procs.items()}


def put(s3, data: dict, dag_id: str, tag: str) -> None:
    s3.put_object(
        Bucket=data["bucket"],
        Key=f"{data['dags_prefix']}{SEED_DIR}/{dag_id}.py",
        Body=DAG_SOURCE.format(dag_id=dag_id, tag=tag),
    )


def tags_of(api: AirflowApi, dag_id: str) -> list[str]:
    dag = api.dag(dag_id) or {}
    return [t["name"] for t in dag.get("tags", [])]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--idle-windows", type=int, default=3)
    parser.add_argument(
        "--reparse-interval",
        type=int,
        help="override dag_processor.min_file_process_interval (30 = MWAA's)",
    )
    parser.add_argument("--keep", action="store_true", help="leave the platform running")
    parser.add_argument(
        "--state-dir",
        help="measure a platform already up (seeded or not); nothing is started or stopped",
    )
    parser.add_argument(
        "--no-wait",
        action="store_true",
        help="with --state-dir: measure at once, without waiting for every file in the API",
    )
    args = parser.parse_args()
    name = "dagsync-visibility" + (
        f"-reparse-{args.reparse_interval}" if args.reparse_interval else ""
    )
    report = Report(name)
    say = report.say  # the result file holds the figures, not the platform's progress
    say(f"# {' '.join(sys.argv[1:]) or '(defaults)'}")

    root = Path(args.state_dir or tempfile.mkdtemp(prefix="bench-visibility-"))
    if not args.state_dir:
        root.chmod(0o755)  # PostgreSQL runs as nobody when we are root
    overlay = []
    if args.reparse_interval:
        overlay = [root / "reparse-values.yaml"]
        options = {"dag_processor.min_file_process_interval": str(args.reparse_interval)}
        overlay[0].write_text(yaml.safe_dump({"airflowConfigurationOptions": options}))
    lp = LocalPlatform(
        root if args.state_dir else root / "state",
        values_files=overlay,
        progress=lambda m: print(f"[local] {m}", flush=True),
    )
    try:
        if not args.state_dir:
            lp.up(timeout=900)
        api = lp.api()
        data = lp.state.load()
        s3 = aws_clients(data["moto_endpoint"])[0]
        rendered = lp.state.rendered.read_text()
        for option in ("REFRESH_INTERVAL", "MIN_FILE_PROCESS_INTERVAL"):
            name = f"AIRFLOW__DAG_PROCESSOR__{option}"
            line = rendered.split(f"name: {name}\n", 1)[1].split("\n", 1)[0].strip()
            say(f"chart default {name} {line}")

        seeded = [f"bench_seed_{i:04d}" for i in range(args.files)]
        if not args.state_dir:
            baseline = total_dags(api)
            began = time.monotonic()
            with ThreadPoolExecutor(16) as pool:
                list(pool.map(lambda d: put(s3, data, d, "v0"), seeded))
            say(f"== {args.files} DAG files put in {time.monotonic() - began:.1f}s")
            wait_until(
                lambda: total_dags(api) >= baseline + args.files,
                3600,
                f"{args.files} DAGs in the API",
                2.0,
            )
            report.value(
                "visibility.initial_load",
                f"all {args.files} files in the API after the first put",
                time.monotonic() - began,
                "s",
                1,
            )
        listing = s3.get_paginator("list_objects_v2").paginate(
            Bucket=data["bucket"], Prefix=data["dags_prefix"]
        )
        in_bucket = sum(len(page.get("Contents", [])) for page in listing)
        on_disk = len(list((lp.state.sync_root / "dags" / "current").rglob("*.py")))
        say(
            f"== {in_bucket} DAG files in the bucket, {on_disk} published by dagsync, "
            f"{total_dags(api)} DAGs in the API"
        )
        if args.no_wait:
            seeded = [
                p.stem for p in (lp.state.sync_root / "dags" / "current").rglob("bench_seed_*.py")
            ]

        busy = " (the DAG processor still parsing the backlog: not idle)" if args.no_wait else ""
        say(f"== CPU over {args.idle_seconds:.0f}s, nothing uploaded{busy}")
        windows = []
        for w in range(args.idle_windows):
            cpu = idle_cpu(lp, args.idle_seconds / args.idle_windows)
            windows.append(cpu)
            say(
                f"   window {w + 1}: dag-processor {cpu['dag-processor']:.1f}% of a core "
                f"(with the parsing processes it forks); dagsync sidecar {cpu['dagsync']:.1f}%"
            )
        report.figure(
            "visibility.idle_cpu.dag_processor",
            "DAG processor idle CPU, % of a core",
            [c["dag-processor"] for c in windows],
            "%",
            1,
        )
        report.figure(
            "visibility.idle_cpu.dagsync",
            "dagsync sidecar idle CPU, % of a core",
            [c["dagsync"] for c in windows],
            "%",
            1,
        )

        say(f"== S3 put -> visible in the API, {args.samples} samples, new and changed alternating")
        results: dict[str, list[float]] = {"new": [], "changed": []}
        for i in range(args.samples):
            kind = "new" if i % 2 == 0 else "changed"
            tag = f"t{uuid.uuid4().hex[:6]}"
            if kind == "new":
                dag_id = f"bench_new_{uuid.uuid4().hex[:8]}"

                def visible(d: str = dag_id) -> bool:
                    return api.dag(d) is not None
            else:
                dag_id = seeded[(i * 37) % len(seeded)]

                def visible(d: str = dag_id, t: str = tag) -> bool:
                    return tags_of(api, d) == [t]

            put_at = time.monotonic()
            put(s3, data, dag_id, tag)
            wait_until(visible, 600, f"{kind} {dag_id} in the API", 0.05)
            results[kind].append(time.monotonic() - put_at)
            say(f"   sample {i + 1:2d} {kind:7s} {results[kind][-1]:.2f}s")
        for kind, values in results.items():
            say(f"{kind:8s}: {describe(values)}")
        every = results["new"] + results["changed"]
        say(f"all     : {describe(every)}")
        report.value("visibility.p50", "S3 put -> visible, p50", percentile(every, 50), "s")
        report.value("visibility.p95", "S3 put -> visible, p95", percentile(every, 95), "s")
        report.write()
    finally:
        if args.state_dir:
            pass
        elif not args.keep:
            lp.down(wipe=True)
            shutil.rmtree(root, ignore_errors=True)
        else:
            say(f"left running: --state-dir {lp.state.root}")


if __name__ == "__main__":
    main()
