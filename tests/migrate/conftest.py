"""An MWAA 2.x environment in a moto bucket, and `migrate check` run against it by its CLI."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

DATA = Path(__file__).parent / "data" / "mwaa-2x"
CLI = str(Path(sys.executable).parent / "airflow-platform")
AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
# Short limits keep the hanging file from holding the run for the platform's 30 s / 50 s.
FAST_LIMITS = ["--import-timeout", "4", "--file-timeout", "8"]


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    report: dict[str, Any] | None
    markdown: str


def zip_folder(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*.py")):
            archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


def upload_environment(s3: Any, bucket: str, source: Path) -> None:
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for path in sorted((source / "dags").rglob("*")):
        if path.is_file():
            key = f"dags/{path.relative_to(source / 'dags').as_posix()}"
            s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
    s3.put_object(Bucket=bucket, Key="plugins.zip", Body=zip_folder(source / "plugins"))
    for name in ("requirements.txt", "startup.sh"):
        s3.put_object(Bucket=bucket, Key=name, Body=(source / name).read_bytes())


def bucket_state(s3: Any, bucket: str) -> dict[str, str]:
    pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket)
    return {
        f"{v['Key']}@{v['VersionId']}": v["ETag"]
        for page in pages
        for v in page.get("Versions", [])
    }


def run_check(args: list[str], endpoint: str, out: Path, cache: Path) -> Run:
    out.mkdir(parents=True, exist_ok=True)
    report, markdown = out / "report.json", out / "report.md"
    env = {**os.environ, **AWS, "AWS_ENDPOINT_URL": endpoint, "COLUMNS": "200"}
    env.pop("AWS_PROFILE", None)
    proc = subprocess.run(
        [
            CLI,
            "migrate",
            "check",
            *args,
            "--json",
            str(report),
            "--markdown",
            str(markdown),
            "--cache-dir",
            str(cache),
            *FAST_LIMITS,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    return Run(
        proc.returncode,
        proc.stdout,
        proc.stderr,
        json.loads(report.read_text()) if report.exists() else None,
        markdown.read_text() if markdown.exists() else "",
    )


@pytest.fixture(scope="session")
def requirements_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("migrate-cache")


@pytest.fixture(scope="module")
def s3(moto_server: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=moto_server,
        region_name="us-east-1",
        **{"aws_access_key_id": "testing", "aws_secret_access_key": "testing"},
    )


@pytest.fixture(scope="module")
def mwaa_bucket(s3: Any) -> str:
    bucket = f"mwaa-{uuid.uuid4().hex[:10]}"
    upload_environment(s3, bucket, DATA)
    return bucket


@pytest.fixture(scope="module")
def checked(
    mwaa_bucket: str,
    s3: Any,
    moto_server: str,
    tmp_path_factory: pytest.TempPathFactory,
    requirements_cache: Path,
) -> Iterator[tuple[Run, Path, dict[str, str], dict[str, str]]]:
    """One full check of the test environment, with --fix; the bucket before and after."""
    out = tmp_path_factory.mktemp("migrate-report")
    environment = json.loads((DATA / "environment.json").read_text())
    environment["Environment"]["SourceBucketArn"] = f"arn:aws:s3:::{mwaa_bucket}"
    env_file = out / "environment.json"
    env_file.write_text(json.dumps(environment))
    before = bucket_state(s3, mwaa_bucket)
    fixed = out / "fixed"
    run = run_check(
        ["--environment", str(env_file), "--fix", str(fixed)], moto_server, out, requirements_cache
    )
    yield run, fixed, before, bucket_state(s3, mwaa_bucket)
