"""Bad input: a clear message naming what and how to fix it, never a traceback."""

from __future__ import annotations

import io
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest

from .conftest import run_check

pytestmark = [pytest.mark.integration]


def zip_bomb() -> bytes:
    """64 MiB of zeros compressed ~1000x: past the platform's ratio limit."""
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("bomb.py", "w") as entry,
    ):
        for _ in range(64):
            entry.write(b"\0" * (1 << 20))
    return buffer.getvalue()


def test_unreadable_bucket_is_a_clear_error(
    moto_server: str, tmp_path: Path, requirements_cache: Path
) -> None:
    run = run_check(
        [f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/dags"],
        moto_server,
        tmp_path,
        requirements_cache,
    )
    assert run.code == 2
    assert "cannot read s3://no-such-bucket" in run.stderr and "NoSuchBucket" in run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    assert run.report is None


def test_missing_folder_and_bad_environment_json(
    moto_server: str, tmp_path: Path, requirements_cache: Path
) -> None:
    run = run_check([str(tmp_path / "nowhere")], moto_server, tmp_path / "a", requirements_cache)
    assert run.code == 2 and "is not a folder" in run.stderr
    bad = tmp_path / "env.json"
    bad.write_text("{not json")
    run = run_check(["--environment", str(bad)], moto_server, tmp_path / "b", requirements_cache)
    assert run.code == 2 and "not JSON" in run.stderr and "get-environment" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.slow
def test_bomb_unresolvable_requirements_broken_startup_and_syntax_error(
    s3: Any, moto_server: str, tmp_path: Path, requirements_cache: Path
) -> None:
    bucket = f"broken-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    put = {
        "dags/broken.py": b"# airflow dag\nfrom airflow.sdk import DAG\nwith DAG('x'\n",
        "dags/fine.py": (
            b"from datetime import datetime\nfrom airflow.sdk import DAG\n"
            b"with DAG('fine', schedule=None, start_date=datetime(2024, 1, 1)):\n    pass\n"
        ),
        "plugins.zip": zip_bomb(),
        "requirements.txt": b"this-package-does-not-exist-7f3a9c==1.0.0\n",
        "startup.sh": b'#!/bin/bash\nif [ -n "$X" ]; then\n  echo unterminated\n',
    }
    for key, body in put.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    run = run_check([f"s3://{bucket}/dags"], moto_server, tmp_path, requirements_cache)
    assert "Traceback" not in run.stderr + run.stdout
    assert run.code == 1 and run.report is not None
    found = {(f["rule"], f["file"]): f for f in run.report["findings"]}
    assert "compression bomb" in found[("MIG042", "plugins.zip")]["message"]
    assert "cannot resolve" in found[("MIG050", "requirements.txt")]["message"]
    assert found[("MIG050", "requirements.txt")]["line"] == 1
    assert found[("MIG072", "startup.sh")]["level"] == "blocker"
    syntax = found[("MIG001", "dags/broken.py")]
    assert syntax["message"].startswith("SyntaxError") and syntax["line"] == 3
    imported = {f["file"]: f["import"] for f in run.report["files"]}
    assert imported["dags/fine.py"] == "ok"  # the rest is still checked
