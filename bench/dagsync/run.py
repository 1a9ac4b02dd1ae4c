"""dagsync benchmark: prints figures and ratios (not a test; takes a few minutes).

One moto server, 5,000 objects of ~2 KB. Like for like first: a fresh process that lists
the bucket, cold sync into an empty folder then incremental sync after changing 1% of the
objects, `airflow-platform dagsync --once` against `aws s3 sync --delete` (awscli from
PyPI, installed on demand into its own venv because it pins botocore) and Airflow's
S3DagBundle; the three interleaved (bench/_runner.py), --runs times each. Then the sync
cycle in process, and event mode (the running sidecar told by S3 events): the same 1%
change, and S3 put -> file visible over --uploads uploads with one SQS queue and in
fan-out mode (S3 -> SNS -> one queue per sidecar; visible in EVERY sidecar's folder).

    .venv/bin/python bench/dagsync/run.py [--runs 3] [--objects 5000] [--uploads 50]
    .venv/bin/python bench/dagsync/run.py --fanout-only   # only the fan-out figures
Writes bench/results/dagsync.txt (not with --fanout-only).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "bench"), str(Path(__file__).resolve().parent)]

from _runner import Report, interleave  # noqa: E402
from tools import awscli, fanout_latencies  # noqa: E402

from airflow_platform.procs import ManagedProcess, free_port, port_open, wait_until  # noqa: E402

BIN = Path(sys.executable).parent
GOALS = (
    "goals: incremental >= 5x faster than aws s3 sync in event mode; cold not slower; "
    "event p95 < 2 s (one queue, and in every sidecar in fan-out mode)"
)


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed


def count_files(path: Path) -> int:
    return sum(1 for p in path.rglob("*") if p.is_file())


BUNDLE_SCRIPT = """
import sys, time, logging
logging.disable(logging.INFO)
from airflow.providers.amazon.aws.bundles.s3 import S3DagBundle
bundle = S3DagBundle(name=sys.argv[2], aws_conn_id="aws_default", bucket_name=sys.argv[1],
                     prefix="dags", refresh_interval=0)
t = time.perf_counter(); bundle.initialize(); cold = time.perf_counter() - t
print("RESULT", cold, flush=True)
sys.stdin.readline()  # wait for the objects to change
t = time.perf_counter(); bundle.refresh(); print("RESULT", time.perf_counter() - t, flush=True)
"""


def bundle_result(proc: subprocess.Popen[str]) -> float:
    """The next figure the bundle script prints (Airflow logs to stdout too)."""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("RESULT "):
            return float(line.split()[1])
    raise ValueError("the S3DagBundle script ended without a result")


def p95(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


class Bench:
    """The bucket, the tools and the runs of one benchmark."""

    def __init__(self, work: Path, env: dict[str, str], endpoint: str, objects: int) -> None:
        self.work, self.env, self.endpoint = work, env, endpoint
        self.s3 = boto3.client("s3", endpoint_url=endpoint)
        self.bucket = "dagsync-bench"
        self.s3.create_bucket(Bucket=self.bucket)
        self.keys = [f"dags/team{i % 20}/sub{i % 7}/dag_{i:05d}.py" for i in range(objects)]
        step = max(1, len(self.keys) // max(1, len(self.keys) // 100))
        self.changed = self.keys[::step][: len(self.keys) // 100]
        self.generation = 0
        self.serial = itertools.count()

    def body(self, i: int, generation: int) -> bytes:
        # A change also changes the size: `aws s3 sync` downloads only on a size
        # difference or a newer *local* file, so same-size edits would be missed.
        head = (f"# dag {i} generation {generation}\n" + "x = 1\n" * 330).encode()[:2048]
        return head + b"y = 2\n" * generation

    def rewrite(self, which: list[str] | None = None, wait: bool = True) -> int:
        """Put new content (of a new size) under `which` (the 1%), 16 at a time."""
        if wait:
            time.sleep(1.1)  # S3 LastModified has 1 s resolution; aws s3 sync compares it
        self.generation += 1
        index = {k: i for i, k in enumerate(self.keys)}
        with ThreadPoolExecutor(16) as pool:
            list(
                pool.map(
                    lambda k: self.s3.put_object(
                        Bucket=self.bucket, Key=k, Body=self.body(index[k], self.generation)
                    ),
                    self.changed if which is None else which,
                )
            )
        return self.generation

    def probe(self, root: Path) -> None:
        """The first changed file under `root` holds the latest generation."""
        text = (root / self.changed[0].removeprefix("dags/")).read_bytes()[:40]
        assert f"generation {self.generation}\n".encode() in text, (root, text)

    def cli(self, argv: list[str], into: Path) -> dict[str, float]:
        """Cold sync into an empty folder, change 1%, incremental sync: one run."""
        cold = timed(argv, self.env)
        self.rewrite()
        incremental = timed(argv, self.env)
        self.probe(into)
        assert count_files(into) == len(self.keys)
        return {"cold": cold, "incremental": incremental}

    def dagsync_once(self) -> dict[str, float]:
        root = self.work / f"ours-{next(self.serial)}"
        argv = [str(BIN / "airflow-platform"), "dagsync", "--once", "--bucket", self.bucket,
                "--root", str(root), "--health-port", "0"]  # fmt: skip
        return self.cli(argv, root / "dags" / "current")

    def aws_sync(self, aws: Path) -> dict[str, float]:
        dest = self.work / f"awscli-{next(self.serial)}"
        argv = [str(aws), "s3", "sync", "--delete", "--only-show-errors",
                f"s3://{self.bucket}/dags/", str(dest)]  # fmt: skip
        return self.cli(argv, dest)

    def s3_dag_bundle(self) -> dict[str, float]:
        n = next(self.serial)
        env = self.env | {
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(self.work / f"b{n}")
        }
        with (self.work / f"bundle-{n}.log").open("w") as log:
            proc = subprocess.Popen(
                [sys.executable, "-c", BUNDLE_SCRIPT, self.bucket, f"bench{n}"],
                env=env, text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
            )  # fmt: skip
            try:
                cold = bundle_result(proc)
                self.rewrite()
                assert proc.stdin is not None
                proc.stdin.write("go\n")
                proc.stdin.flush()
                incremental = bundle_result(proc)
            finally:
                proc.kill()
                proc.wait()
        return {"cold": cold, "incremental": incremental}

    def in_process(self) -> dict[str, float]:
        """The sync cycle without interpreter start-up: cold, incremental (full listing),
        targeted (only the keys events named, as the sidecar does) and the listing alone."""
        from airflow_platform.dagsync.service import DagSync
        from airflow_platform.dagsync.settings import build_settings

        root = self.work / f"inproc-{next(self.serial)}"
        sync = DagSync(build_settings(bucket=self.bucket, root=root, health_port=0))
        sync.prepare()
        try:
            t = time.perf_counter()
            assert sync.run_cycle("bench").ok
            cold = time.perf_counter() - t
            self.rewrite(wait=False)
            t = time.perf_counter()
            assert sync.run_cycle("bench").ok
            incremental = time.perf_counter() - t
            self.rewrite(wait=False)
            t = time.perf_counter()
            assert sync.run_cycle("bench", set(self.changed)).ok
            targeted = time.perf_counter() - t
            t = time.perf_counter()
            listed, _ = sync.mirror.list_desired()
            listing = time.perf_counter() - t
            assert len(listed) == len(self.keys)
        finally:
            sync.close()
        return {"cold": cold, "incremental": incremental, "targeted": targeted,
                "listing": listing}  # fmt: skip

    def event_mode(self, runs: int, uploads: int) -> tuple[list[float], list[float]]:
        """(seconds until the 1% change is visible after the last put returned, per run;
        put -> visible per upload) with one event-mode sidecar on one SQS queue."""
        sqs = boto3.client("sqs", endpoint_url=self.endpoint)
        queue = sqs.create_queue(QueueName="dagsync-bench-events")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.s3.put_bucket_notification_configuration(
            Bucket=self.bucket,
            NotificationConfiguration={
                "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]
            },
        )
        root = self.work / "events"
        listener = ManagedProcess(
            "dagsync-events",
            [str(BIN / "airflow-platform"), "dagsync", "--bucket", self.bucket,
             "--root", str(root), "--interval", "3600", "--event-queue-url", queue,
             "--health-host", "127.0.0.1", "--health-port", str(free_port())],
            self.work / "events.log",
            env=self.env,
        ).start()  # fmt: skip
        try:
            wait_until(
                lambda: listener.check_alive() or (root / ".ready").exists(), 180, "event mode"
            )
            current = root / "dags" / "current"
            targets = [current / k.removeprefix("dags/") for k in self.changed]
            changes = []
            for _ in range(max(3, runs)):
                generation = self.rewrite(wait=False)
                last_put = time.perf_counter()
                mark = f"generation {generation}\n".encode()
                while not all(mark in t.read_bytes()[:40] for t in targets):
                    if time.perf_counter() - last_put > 120:
                        raise RuntimeError(f"changes did not arrive; see {self.work}/events.log")
                    time.sleep(0.002)
                changes.append(time.perf_counter() - last_put)
            latencies = []
            for n in range(uploads):
                rel = f"events/new_{n:03d}.py"
                started = time.perf_counter()
                self.s3.put_object(Bucket=self.bucket, Key=f"dags/{rel}", Body=b"x = 1\n")
                while not (current / rel).exists():
                    if time.perf_counter() - started > 120:
                        raise RuntimeError(f"{rel} did not arrive; see {self.work}/events.log")
                    time.sleep(0.002)
                latencies.append(time.perf_counter() - started)
            return changes, latencies
        finally:
            listener.stop()  # the fan-out topic replaces its queue as the bucket's destination


def start_moto(work: Path) -> tuple[ManagedProcess, str, dict[str, str]]:
    port = free_port()
    moto = ManagedProcess(
        "moto", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], work / "moto.log"
    ).start()
    endpoint = f"http://127.0.0.1:{port}"
    aws_env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    os.environ.update(aws_env)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(work / "airflow-home"),
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(
            {"conn_type": "aws", "extra": {"endpoint_url": endpoint}}
        ),
    }
    wait_until(lambda: moto.check_alive() or port_open(port), 60, "moto server")
    return moto, endpoint, env


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3, help="runs of each compared tool")
    parser.add_argument("--objects", type=int, default=5000)
    parser.add_argument("--uploads", type=int, default=50)
    parser.add_argument("--sidecars", type=int, default=3, help="dagsync processes in fan-out")
    parser.add_argument("--fanout-only", action="store_true", help="only the fan-out figures")
    args = parser.parse_args()
    aws = None if args.fanout_only else awscli()
    work = Path(tempfile.mkdtemp(prefix="dagsync-bench-"))
    moto, endpoint, env = start_moto(work)
    report = Report("dagsync")
    say = report.say
    try:
        bench = Bench(work, env, endpoint, args.objects)
        say(f"uploading {len(bench.keys)} objects of ~2 KB ...")
        bench.rewrite(bench.keys, wait=False)
        if args.fanout_only:
            fanout = fanout_latencies(
                bench.s3, bench.bucket, endpoint, env, work, args.uploads, args.sidecars
            )
            report.figure("dagsync.fanout", f"fan-out put -> visible in all {args.sidecars}",
                          fanout)  # fmt: skip
            return
        assert aws is not None
        say(f"== like for like: cold, then incremental ({len(bench.changed)} objects changed), "
            f"interleaved, {args.runs} runs each")  # fmt: skip
        runs = interleave(
            {
                "dagsync --once": bench.dagsync_once,
                "aws s3 sync": lambda: bench.aws_sync(aws),
                "S3DagBundle": bench.s3_dag_bundle,
                "dagsync in-process": bench.in_process,
            },
            args.runs,
            say,
        )
        say("== event mode (the running sidecar, told by S3 events)")
        changes, latencies = bench.event_mode(args.runs, args.uploads)
        say(f"== fan-out mode, {args.sidecars} sidecars")
        fanout = fanout_latencies(
            bench.s3, bench.bucket, endpoint, env, work, args.uploads, args.sidecars
        )
    finally:
        moto.stop()
        shutil.rmtree(work, ignore_errors=True)

    ours, theirs, bundle = runs["dagsync --once"], runs["aws s3 sync"], runs["S3DagBundle"]
    inproc = runs["dagsync in-process"]
    say(f"\n== figures: {len(bench.keys)} objects of ~2 KB, {len(bench.changed)} changed (1%), "
        "moto server; medians, spread min-max")  # fmt: skip
    say("like for like (a fresh process listing the bucket):")
    report.ratio("dagsync.incremental.ratio_aws", "incremental, aws s3 sync / dagsync --once",
                 theirs["incremental"], ours["incremental"])  # fmt: skip
    report.ratio("dagsync.cold.ratio_aws", "cold, aws s3 sync / dagsync --once",
                 theirs["cold"], ours["cold"])  # fmt: skip
    report.ratio("dagsync.incremental.ratio_bundle", "incremental, S3DagBundle / dagsync --once",
                 bundle["incremental"], ours["incremental"])  # fmt: skip
    report.ratio("dagsync.cold.ratio_bundle", "cold, S3DagBundle / dagsync --once",
                 bundle["cold"], ours["cold"])  # fmt: skip
    for key, name, figures in (("once", "dagsync --once", ours), ("aws", "aws s3 sync", theirs),
                               ("bundle", "S3DagBundle", bundle)):  # fmt: skip
        report.figure(f"dagsync.cold.{key}", f"cold, {name}", figures["cold"])
        report.figure(f"dagsync.incremental.{key}", f"incremental, {name}", figures["incremental"])
    say("in process (no interpreter start):")
    for figure in ("cold", "incremental", "targeted", "listing"):
        report.figure(f"dagsync.inproc.{figure}", f"{figure} cycle", inproc[figure])
    say("event mode (special mode: the running sidecar re-reads only the keys events name):")
    report.figure("dagsync.event.incremental",
                  "the 1% change visible after the last put returned", changes)  # fmt: skip
    report.ratio("dagsync.event.ratio_aws", "aws s3 sync incremental / event mode",
                 theirs["incremental"], changes)  # fmt: skip
    report.figure("dagsync.event.upload", f"one queue, put -> visible, {len(latencies)} uploads",
                  latencies, digits=3)  # fmt: skip
    report.value("dagsync.event.upload.p95", "one queue, put -> visible, p95", p95(latencies), "s",
                 3)  # fmt: skip
    report.figure("dagsync.fanout.upload", f"fan-out, put -> visible in all {args.sidecars}, "
                  f"{len(fanout)} uploads", fanout, digits=3)  # fmt: skip
    report.value("dagsync.fanout.upload.p95", "fan-out, put -> visible in all, p95",
                 p95(fanout), "s", 3)  # fmt: skip
    say(GOALS)
    report.write()


if __name__ == "__main__":
    main()
