"""dagsync benchmark: prints figures and ratios (not a test; takes a few minutes).

One moto server, 5,000 objects of ~2 KB. Cold sync and incremental sync after changing
1% of the objects: `airflow-platform dagsync --once` against `aws s3 sync --delete`
(awscli from PyPI, installed on demand into its own venv because it pins botocore) and
Airflow's S3DagBundle refresh. Then event mode: S3 put -> file visible locally, p50/p95
over 50 uploads, with one SQS queue (one consumer) and in fan-out mode (S3 -> SNS -> one
queue per sidecar; put -> visible in EVERY sidecar's folder, as in every pod).

    .venv/bin/python bench/dagsync/run.py [--objects 5000] [--uploads 50] [--sidecars 3]
    .venv/bin/python bench/dagsync/run.py --fanout-only   # only the fan-out figures
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3

from airflow_platform.procs import ManagedProcess, free_port, port_open, wait_until

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / ".cache" / "tools"
AWSCLI_VENV = TOOLS / "awscli-venv"
BIN = Path(sys.executable).parent
GOALS = (
    "goals: incremental >= 5x faster than aws s3 sync; cold not slower; event p95 < 2 s "
    "(one queue, and in every sidecar in fan-out mode)"
)


def awscli() -> Path:
    aws = AWSCLI_VENV / "bin" / "aws"
    if not aws.exists():
        print("installing awscli into", AWSCLI_VENV, flush=True)
        python = shutil.which("python3") or sys.executable
        subprocess.run(
            [str(TOOLS / "bin" / "uv"), "venv", "-p", python, str(AWSCLI_VENV)], check=True
        )
        subprocess.run(
            [
                str(TOOLS / "bin" / "uv"),
                "pip",
                "install",
                "--python",
                str(AWSCLI_VENV / "bin" / "python"),
                "awscli",
            ],
            check=True,
        )
    return aws


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
bundle = S3DagBundle(name="bench", aws_conn_id="aws_default", bucket_name=sys.argv[1],
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


def percentiles(latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p50 = statistics.median(ordered)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    return f"p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms"


def fanout_latencies(
    s3: object, bucket: str, endpoint: str, env: dict[str, str], work: Path, uploads: int, n: int
) -> list[float]:
    """Fan-out mode: n sidecars on one topic; seconds from put until the file is visible in
    every sidecar's DAGs folder (the slowest one counts, like the worker that lags)."""
    sns = boto3.client("sns", endpoint_url=endpoint)
    topic = sns.create_topic(Name="dagsync-bench-fanout")["TopicArn"]
    s3.put_bucket_notification_configuration(  # type: ignore[attr-defined]
        Bucket=bucket,
        NotificationConfiguration={
            "TopicConfigurations": [{"TopicArn": topic, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    roots = [work / f"fanout-{i}" for i in range(n)]
    sidecars = [
        ManagedProcess(
            f"dagsync-fanout-{i}",
            [
                str(BIN / "airflow-platform"),
                "dagsync",
                *("--bucket", bucket, "--root", str(root), "--interval", "3600"),
                *("--event-topic-arn", topic, "--health-port", "0"),
            ],
            work / f"fanout-{i}.log",
            env=env,
        ).start()
        for i, root in enumerate(roots)
    ]
    try:
        for sidecar, root in zip(sidecars, roots, strict=True):
            wait_until(
                lambda s=sidecar, r=root: s.check_alive() or (r / ".ready").exists(),
                300,
                f"{sidecar.name} ready",
            )
        latencies = []
        for k in range(uploads):
            rel = f"fanout/new_{k:03d}.py"
            targets = [root / "dags" / "current" / rel for root in roots]
            started = time.perf_counter()
            s3.put_object(Bucket=bucket, Key=f"dags/{rel}", Body=b"x = 1\n")  # type: ignore[attr-defined]
            while not all(t.exists() for t in targets):
                if time.perf_counter() - started > 120:
                    raise RuntimeError(
                        f"{rel} did not reach every sidecar; see {work}/fanout-*.log"
                    )
                time.sleep(0.002)
            latencies.append(time.perf_counter() - started)
        return latencies
    finally:
        for sidecar in sidecars:
            sidecar.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=5000)
    parser.add_argument("--uploads", type=int, default=50)
    parser.add_argument("--sidecars", type=int, default=3, help="dagsync processes in fan-out")
    parser.add_argument("--fanout-only", action="store_true", help="only the fan-out figures")
    args = parser.parse_args()
    aws = None if args.fanout_only else awscli()
    work = Path(tempfile.mkdtemp(prefix="dagsync-bench-"))
    port = free_port()
    moto = ManagedProcess(
        "moto", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], work / "moto.log"
    ).start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AIRFLOW_HOME": str(work / "airflow-home"),
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(
            {"conn_type": "aws", "extra": {"endpoint_url": endpoint}}
        ),
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(work / "bundles"),
    }
    for key in (
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
    ):
        os.environ[key] = env[key]
    bundle_proc = None
    listener = None
    try:
        wait_until(lambda: moto.check_alive() or port_open(port), 60, "moto server")
        s3 = boto3.client("s3", endpoint_url=endpoint)
        bucket = "dagsync-bench"
        s3.create_bucket(Bucket=bucket)
        keys = [f"dags/team{i % 20}/sub{i % 7}/dag_{i:05d}.py" for i in range(args.objects)]

        def body(i: int, generation: int) -> bytes:
            # A change also changes the size: `aws s3 sync` downloads only on a size
            # difference or a newer *local* file, so same-size edits would be missed.
            return (f"# dag {i} generation {generation}\n" + "x = 1\n" * 330).encode()[:2048] + (
                b"y = 2\n" * generation
            )

        print(f"uploading {len(keys)} objects of ~2 KB ...", flush=True)
        with ThreadPoolExecutor(16) as pool:
            list(
                pool.map(
                    lambda ik: s3.put_object(Bucket=bucket, Key=ik[1], Body=body(ik[0], 0)),
                    enumerate(keys),
                )
            )

        if args.fanout_only:
            fanout = fanout_latencies(s3, bucket, endpoint, env, work, args.uploads, args.sidecars)
            print(
                f"fan-out mode ({args.sidecars} sidecars, {len(keys)} objects) put -> visible "
                f"in all over {len(fanout)} uploads: {percentiles(fanout)}"
            )
            return
        assert aws is not None
        ours = [
            str(BIN / "airflow-platform"),
            "dagsync",
            "--once",
            "--bucket",
            bucket,
            "--root",
            str(work / "ours"),
            "--health-port",
            "0",
        ]
        theirs = [
            str(aws),
            "s3",
            "sync",
            "--delete",
            "--only-show-errors",
            f"s3://{bucket}/dags/",
            str(work / "awscli"),
        ]
        results: dict[str, dict[str, float]] = {"dagsync": {}, "aws s3 sync": {}, "S3DagBundle": {}}

        print("cold sync ...", flush=True)
        results["dagsync"]["cold"] = timed(ours, env)
        results["aws s3 sync"]["cold"] = timed(theirs, env)
        assert count_files(work / "ours" / "dags" / "current") == len(keys)
        assert count_files(work / "awscli") == len(keys)
        try:
            bundle_log = (work / "bundle.log").open("w")
            bundle_proc = subprocess.Popen(
                [sys.executable, "-c", BUNDLE_SCRIPT, bucket],
                env=env,
                text=True,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=bundle_log,
            )
            results["S3DagBundle"]["cold"] = bundle_result(bundle_proc)
        except (ValueError, OSError) as exc:
            print(f"S3DagBundle not measured: {exc}; see {work / 'bundle.log'}")
            bundle_proc = None

        changed = keys[:: max(1, len(keys) // max(1, len(keys) // 100))][: len(keys) // 100]

        def rewrite(which: list[str], generation: int) -> None:
            """Put new content (of a new size) under `which`, 16 at a time."""
            with ThreadPoolExecutor(16) as pool:
                list(
                    pool.map(
                        lambda k: s3.put_object(
                            Bucket=bucket, Key=k, Body=body(keys.index(k), generation)
                        ),
                        which,
                    )
                )

        print(f"changing {len(changed)} objects (1%) ...", flush=True)
        time.sleep(1.1)  # S3 LastModified has 1 s resolution; aws s3 sync compares it
        rewrite(changed, 1)
        print("incremental sync ...", flush=True)
        results["dagsync"]["incremental"] = timed(ours, env)
        results["aws s3 sync"]["incremental"] = timed(theirs, env)
        if bundle_proc is not None:
            bundle_proc.stdin.write("go\n")  # type: ignore[union-attr]
            bundle_proc.stdin.flush()  # type: ignore[union-attr]
            results["S3DagBundle"]["incremental"] = bundle_result(bundle_proc)
        probe = changed[0].removeprefix("dags/")
        assert b"generation 1" in (work / "ours" / "dags" / "current" / probe).read_bytes()
        assert b"generation 1" in (work / "awscli" / probe).read_bytes()

        # In-process figure: the sync itself without interpreter start-up.
        from airflow_platform.dagsync.service import DagSync
        from airflow_platform.dagsync.settings import build_settings

        sync = DagSync(build_settings(bucket=bucket, root=work / "inproc", health_port=0))
        sync.prepare()
        t = time.perf_counter()
        assert sync.run_cycle("bench").ok
        inproc_cold = time.perf_counter() - t
        rewrite(changed, 2)
        t = time.perf_counter()
        assert sync.run_cycle("bench").ok
        inproc_incr = time.perf_counter() - t
        # What an event-triggered sync does: re-read only the keys the events named.
        rewrite(changed, 3)
        t = time.perf_counter()
        assert sync.run_cycle("bench", set(changed)).ok
        targeted = time.perf_counter() - t
        t = time.perf_counter()
        listed, _ = sync.mirror.list_desired()
        listing = time.perf_counter() - t
        assert len(listed) == len(keys)
        sync.close()

        print("event mode ...", flush=True)
        sqs = boto3.client("sqs", endpoint_url=endpoint)
        queue = sqs.create_queue(QueueName="dagsync-bench-events")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        s3.put_bucket_notification_configuration(
            Bucket=bucket,
            NotificationConfiguration={
                "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]
            },
        )
        health = free_port()
        listener = ManagedProcess(
            "dagsync-events",
            [
                str(BIN / "airflow-platform"),
                "dagsync",
                "--bucket",
                bucket,
                "--root",
                str(work / "events"),
                "--interval",
                "3600",
                "--event-queue-url",
                queue,
                "--health-host",
                "127.0.0.1",
                "--health-port",
                str(health),
            ],
            work / "events.log",
            env=env,
        ).start()
        wait_until(
            lambda: listener.check_alive() or (work / "events" / ".ready").exists(),
            180,
            "event-mode dagsync",
        )
        # The incremental sync as the sidecar runs it: the same 1% changes, announced by
        # their S3 events; done when every changed file shows its new content.
        targets = [work / "events" / "dags" / "current" / k.removeprefix("dags/") for k in changed]
        first_put = time.perf_counter()
        rewrite(changed, 4)
        last_put = time.perf_counter()
        while not all(b"generation 4" in t.read_bytes()[:40] for t in targets):
            if time.perf_counter() - first_put > 120:
                raise RuntimeError(f"the changes did not arrive; see {work / 'events.log'}")
            time.sleep(0.002)
        visible = time.perf_counter()
        event_incr, event_incr_puts = visible - last_put, visible - first_put
        latencies = []
        for n in range(args.uploads):
            rel = f"events/new_{n:03d}.py"
            target = work / "events" / "dags" / "current" / rel
            started = time.perf_counter()
            s3.put_object(Bucket=bucket, Key=f"dags/{rel}", Body=b"x = 1\n")
            while not target.exists():
                if time.perf_counter() - started > 120:
                    raise RuntimeError(f"{rel} did not arrive; see {work / 'events.log'}")
                time.sleep(0.002)
            latencies.append(time.perf_counter() - started)
        listener.stop()  # the topic below replaces its queue as the bucket's destination
        print(f"fan-out mode, {args.sidecars} sidecars ...", flush=True)
        fanout = fanout_latencies(s3, bucket, endpoint, env, work, args.uploads, args.sidecars)

        print()
        print(
            f"dagsync benchmark: {len(keys)} objects of ~2 KB, "
            f"{len(changed)} changed (1%), moto server"
        )
        print(f"{'':14}{'cold s':>10}{'incremental s':>16}")
        for name, figures in results.items():
            if figures:
                cold = figures.get("cold", float("nan"))
                incremental = figures.get("incremental", float("nan"))
                print(f"{name:14}{cold:>10.2f}{incremental:>16.2f}")
        d, a = results["dagsync"], results["aws s3 sync"]
        print(
            f"dagsync in-process (no interpreter start): cold {inproc_cold:.2f} s, "
            f"incremental {inproc_incr:.2f} s"
        )
        print(
            f"ratio incremental aws s3 sync / dagsync: {a['incremental'] / d['incremental']:.1f}x"
        )
        print(f"ratio cold aws s3 sync / dagsync: {a['cold'] / d['cold']:.2f}x")
        print(
            f"full listing of {len(keys)} keys alone (the floor of any reconcile): {listing:.2f} s"
        )
        print(
            f"dagsync incremental in event mode (the sidecar with S3 events, {len(changed)} "
            f"changes): all visible {event_incr:.2f} s after the last put returned "
            f"({event_incr_puts:.2f} s after the first put began); "
            f"ratio aws s3 sync / that: {a['incremental'] / event_incr:.1f}x"
        )
        print(
            f"  of which the sync cycle in-process (the {len(changed)} keys events named): "
            f"{targeted:.2f} s"
        )
        b = results["S3DagBundle"]
        if "incremental" in b:
            print(
                "ratio incremental S3DagBundle / dagsync: "
                f"{b['incremental'] / d['incremental']:.1f}x"
            )
            print(f"ratio cold S3DagBundle / dagsync: {b['cold'] / d['cold']:.2f}x")
        print(
            f"event mode (one queue) put -> visible over {len(latencies)} uploads: "
            f"{percentiles(latencies)}"
        )
        print(
            f"fan-out mode ({args.sidecars} sidecars) put -> visible in all over "
            f"{len(fanout)} uploads: {percentiles(fanout)}"
        )
        print(GOALS)
    finally:
        if listener is not None:
            listener.stop()
        if bundle_proc is not None:
            bundle_proc.kill()
            bundle_proc.wait()
        moto.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
