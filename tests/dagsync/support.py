"""Helpers shared by the dagsync tests."""

from __future__ import annotations

import itertools
import os
import re
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from airflow_platform.dagsync.service import DagSync
from airflow_platform.dagsync.settings import build_settings
from airflow_platform.procs import ManagedProcess, free_port, wait_until

_counter = itertools.count()

AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}

CLI = str(Path(sys.executable).parent / "airflow-platform")


def new_bucket(s3c: Any, compliant: bool = True) -> str:
    name = f"dagsync-{next(_counter)}-{uuid.uuid4().hex[:8]}"
    s3c.create_bucket(Bucket=name)
    if compliant:
        s3c.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        s3c.put_public_access_block(
            Bucket=name,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
    return name


def make_sync(
    root: Path, bucket: str, on_progress: Callable[[str], None] | None = None, **overrides: Any
) -> DagSync:
    values: dict[str, Any] = {"bucket": bucket, "root": root, "health_port": 0}
    values.update(overrides)
    sync = DagSync(build_settings(**values), on_progress=on_progress)
    sync.prepare()
    return sync


def tree(path: Path) -> dict[str, bytes]:
    """Every file under `path` (following the `current` symlink) by relative path."""
    base = Path(os.path.realpath(path))
    return {
        str(p.relative_to(base)): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()
    }


def cli_env(endpoint: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSYNC_")}
    return {**env, **AWS_TEST_ENV, "AWS_ENDPOINT_URL": endpoint, "AWS_MAX_ATTEMPTS": "2", **extra}


def metric(text: str, name: str, **labels: str) -> float:
    # prometheus_client prints labels sorted by name.
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = rf"^{re.escape(name)}{re.escape('{' + wanted + '}') if wanted else ''} (\S+)$"
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else float("nan")


def start_loop(
    workdir: Path, endpoint: str, *args: str, env: dict[str, str] | None = None
) -> tuple[ManagedProcess, str]:
    """`airflow-platform dagsync` in loop mode with its root under `workdir`; returns the
    process and the base URL of its health server once that answers."""
    port = free_port()
    proc = ManagedProcess(
        "dagsync",
        [
            CLI,
            "dagsync",
            "--root",
            str(workdir / "root"),
            "--health-host",
            "127.0.0.1",
            "--health-port",
            str(port),
            *args,
        ],
        workdir / "dagsync.log",
        env=cli_env(endpoint, **(env or {})),
    ).start()
    url = f"http://127.0.0.1:{port}"

    wait_until(
        lambda: not proc.alive() or httpx.get(f"{url}/healthz").status_code == 200,
        90,
        "dagsync health endpoint",
    )
    if not proc.alive():
        raise AssertionError(f"dagsync exited early:\n{proc.log_path.read_text()[-3000:]}")
    return proc, url
