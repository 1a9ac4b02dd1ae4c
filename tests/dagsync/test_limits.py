"""Limits on what a bucket may make dagsync write: refused on the sizes S3 announces,
before any download, on the reconcile and the event path; the last good version stays
published and the refusal clears by itself once the bucket is fixed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_platform.dagsync.service import DagSync
from airflow_platform.dagsync.settings import SettingsError, build_settings
from airflow_platform.paths import SyncLayout
from airflow_platform.procs import wait_until

from .support import make_sync, metric, start_loop, tree

pytestmark = pytest.mark.integration

LIMITS = {"max_object_bytes": 1000, "max_total_bytes": 2000, "max_files": 4}


def put(s3c: Any, bucket: str, key: str, size: int) -> None:
    s3c.put_object(Bucket=bucket, Key=key, Body=b"x" * size)


def build_dirs(root: Path) -> list[str]:
    """Half-built versions and staging files: a refusal must leave none behind."""
    versions = root / "dags" / ".versions"
    return [p.name for p in versions.iterdir() if p.name.startswith(".")]


def published(sync: DagSync) -> tuple[str | None, dict[str, bytes]]:
    return sync.dags.current_name(), tree(sync.layout.dags)


@pytest.fixture
def synced(s3c: Any, bucket: str, tmp_path: Path) -> DagSync:
    put(s3c, bucket, "dags/a.py", 100)
    put(s3c, bucket, "dags/b.py", 100)
    sync = make_sync(tmp_path, bucket, **LIMITS)
    assert sync.run_cycle("test").ok
    return sync


def refusal(sync: DagSync, result: Any) -> tuple[str, str]:
    assert not result.ok
    [(part, kind, message)] = result.errors
    assert part == "dags" and sync.refusals["dags"] == (kind, message)
    return kind, message


def test_an_oversized_object_is_refused_from_the_listing(
    s3c: Any, bucket: str, synced: DagSync
) -> None:
    before = published(synced)
    put(s3c, bucket, "dags/data/huge.parquet", 5000)
    result = synced.run_cycle("reconcile")
    kind, message = refusal(synced, result)
    assert kind == "object_too_large"
    assert "dags/data/huge.parquet (4.9 KiB)" in message
    assert "dags.sync.maxObjectBytes" in message and "DAGSYNC_MAX_OBJECT_BYTES" in message
    assert published(synced) == before
    assert synced.metrics.downloaded._value.get() == 200  # only the first sync's bytes
    assert build_dirs(synced.layout.root) == []
    text = synced.metrics.render().decode()
    assert metric(text, "dagsync_refused", part="dags", reason="object_too_large") == 1
    assert synced.status()["refused"] == [
        {"part": "dags", "reason": "object_too_large", "message": message}
    ]
    # Fixed bucket: accepted again, the refusal is gone from metrics and status.
    s3c.delete_object(Bucket=bucket, Key="dags/data/huge.parquet")
    put(s3c, bucket, "dags/c.py", 100)
    assert synced.run_cycle("reconcile").ok
    assert sorted(tree(synced.layout.dags)) == ["a.py", "b.py", "c.py"]
    text = synced.metrics.render().decode()
    assert "dagsync_refused{" not in text
    assert synced.status()["refused"] == [] and synced.refusals == {}


@pytest.mark.parametrize(
    ("extra", "reason", "words"),
    [
        ({f"dags/many/{i}.py": 10 for i in range(3)}, "too_many_files", "holds 5 files"),
        ({"dags/big1.sql": 999, "dags/big2.sql": 999}, "total_too_large", "holds 2.1 KiB"),
    ],
    ids=["files", "total"],
)
def test_too_many_files_or_bytes_are_refused(
    s3c: Any, bucket: str, synced: DagSync, extra: dict[str, int], reason: str, words: str
) -> None:
    before = published(synced)
    for key, size in extra.items():
        put(s3c, bucket, key, size)
    kind, message = refusal(synced, synced.run_cycle("reconcile"))
    assert kind == reason and words in message
    assert ("dags.sync.maxFiles" if reason == "too_many_files" else "maxTotalBytes") in message
    assert published(synced) == before
    assert synced.metrics.downloaded._value.get() == 200


def test_the_event_path_refuses_before_writing(s3c: Any, bucket: str, synced: DagSync) -> None:
    before = published(synced)
    put(s3c, bucket, "dags/big.bin", 1500)
    kind, message = refusal(synced, synced.run_cycle("event", {"dags/big.bin"}))
    assert kind == "object_too_large" and "s3://" in message and "nothing was downloaded" in message
    assert published(synced) == before and build_dirs(synced.layout.root) == []
    assert synced.metrics.downloaded._value.get() == 200
    # Each under the per-object limit, together past the total (200 bytes already held).
    s3c.delete_object(Bucket=bucket, Key="dags/big.bin")
    names = {"dags/c.py", "dags/d.py", "dags/e.py"}
    for key in names:
        put(s3c, bucket, key, 900)
    kind, message = refusal(synced, synced.run_cycle("event", names))
    assert kind == "total_too_large" and "maxTotalBytes" in message
    assert published(synced) == before and build_dirs(synced.layout.root) == []
    # Within the limits again: the event lands and the refusal clears.
    s3c.delete_object(Bucket=bucket, Key="dags/e.py")
    assert synced.run_cycle("event", names).ok
    assert sorted(tree(synced.layout.dags)) == ["a.py", "b.py", "c.py", "d.py"]
    assert synced.refusals == {}


def test_requirements_and_startup_are_capped(s3c: Any, bucket: str, tmp_path: Path) -> None:
    s3c.put_object(Bucket=bucket, Key="requirements.txt", Body=b"requests==2.32.0\n")
    s3c.put_object(Bucket=bucket, Key="startup.sh", Body=b"export A=1\n")
    sync = make_sync(
        tmp_path,
        bucket,
        requirements_key="requirements.txt",
        startup_key="startup.sh",
        max_script_bytes=64,
    )
    assert sync.run_cycle("test").ok
    s3c.put_object(Bucket=bucket, Key="requirements.txt", Body=b"# padding\n" * 100)
    s3c.put_object(Bucket=bucket, Key="startup.sh", Body=b"#" * 65)
    result = sync.run_cycle("test")
    assert not result.ok
    assert sorted((p, k) for p, k, _ in result.errors) == [
        ("requirements", "requirements_too_large"),
        ("startup", "startup_too_large"),
    ]
    assert all("dags.sync.maxScriptBytes" in m for _, _, m in result.errors)
    layout = SyncLayout(tmp_path)
    assert layout.requirements.read_bytes() == b"requests==2.32.0\n"
    assert layout.startup_script.read_bytes() == b"export A=1\n"
    assert list(layout.requirements.parent.glob(".tmp-*")) == []


def test_limits_are_validated() -> None:
    with pytest.raises(SettingsError, match="DAGSYNC_MAX_FILES must be between 1"):
        build_settings(bucket="b-ok", max_files=0)
    with pytest.raises(SettingsError, match="larger than --max-total-bytes"):
        build_settings(bucket="b-ok", max_object_bytes=10, max_total_bytes=5)


def test_the_sidecar_reports_a_refusal_and_recovers(
    s3c: Any, bucket: str, aws: str, tmp_path: Path
) -> None:
    put(s3c, bucket, "dags/a.py", 10)
    proc, url = start_loop(
        tmp_path, aws, "--bucket", bucket, "--interval", "1", "--max-object-bytes", "100"
    )
    dags = SyncLayout(tmp_path / "root").dags
    try:
        wait_until(lambda: httpx.get(f"{url}/readyz").status_code == 200, 90, "readiness")
        put(s3c, bucket, "dags/big.bin", 101)

        def refused() -> list[dict[str, str]]:
            return list(httpx.get(f"{url}/status").json()["refused"])

        wait_until(lambda: bool(refused()), 60, "the refusal on /status")
        [entry] = refused()
        assert entry["part"] == "dags" and entry["reason"] == "object_too_large"
        assert "dags/big.bin" in entry["message"]
        text = httpx.get(f"{url}/metrics").text
        assert metric(text, "dagsync_refused", part="dags", reason="object_too_large") == 1
        # Still ready: the last good DAGs are served.
        assert httpx.get(f"{url}/readyz").status_code == 200
        assert tree(dags) == {"a.py": b"x" * 10}
        s3c.delete_object(Bucket=bucket, Key="dags/big.bin")
        wait_until(lambda: not refused(), 60, "the refusal to clear")
        assert "dagsync_refused{" not in httpx.get(f"{url}/metrics").text
        logs = [json.loads(x) for x in proc.log_path.read_text().splitlines() if x.startswith("{")]
        said = [x["msg"] for x in logs if x.get("event") == "refused"]
        assert said[0].startswith("bucket refused: s3://") and said[-1] == "bucket accepted again"
    finally:
        proc.stop()
