"""The parts of the dagsync benchmark that stand apart: awscli in its own venv, and the
fan-out mode's latency (S3 -> SNS -> one queue per sidecar)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import boto3

from airflow_platform.procs import ManagedProcess, wait_until

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / ".cache" / "tools"
AWSCLI_VENV = TOOLS / "awscli-venv"
BIN = Path(sys.executable).parent


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
