"""Failures keep the last good version published and never publish a partial tree:
the server gone mid-sync, a body cut half-way, corrupted bytes, throttling, disk full."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

from airflow_platform.paths import SyncLayout
from airflow_platform.procs import ManagedProcess, free_port, port_open, wait_until

from .faultproxy import FaultProxy, Rule
from .support import AWS_TEST_ENV, make_sync, new_bucket, tree

pytestmark = pytest.mark.integration


def no_leftovers(root: Path) -> list[str]:
    versions = root / "dags" / ".versions"
    return [p.name for p in versions.iterdir() if p.name.startswith(".")]


def is_get(key_part: str):
    return lambda method, path: method == "GET" and key_part in path and "list-type" not in path


@pytest.fixture
def published(s3c: Any, tmp_path: Path) -> tuple[str, Path, dict[str, bytes]]:
    """A bucket whose first version is synced, and a second state waiting in S3."""
    bucket = new_bucket(s3c)
    for i in range(5):
        s3c.put_object(Bucket=bucket, Key=f"dags/f{i}.py", Body=f"v1 {i}\n".encode() * 50)
    sync = make_sync(tmp_path, bucket)
    assert sync.run_cycle("test").ok
    sync.close()
    good = tree(SyncLayout(tmp_path).dags)
    for i in range(5):
        s3c.put_object(Bucket=bucket, Key=f"dags/f{i}.py", Body=f"v2 {i}\n".encode() * 50)
    s3c.put_object(Bucket=bucket, Key="dags/target.py", Body=b"T" * 20_000)
    return bucket, tmp_path, good


@pytest.fixture
def proxy(aws: str, monkeypatch: pytest.MonkeyPatch):
    with FaultProxy(aws) as fault_proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", fault_proxy.url)
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "4")
        yield fault_proxy


def test_body_cut_once_is_retried_and_verified(published, proxy: FaultProxy) -> None:
    bucket, root, _ = published
    rule = proxy.add(Rule(is_get("target.py"), "cut", times=1))
    result = make_sync(root, bucket).run_cycle("test")
    assert result.ok, result.summary()
    assert rule.hits == 1
    assert tree(SyncLayout(root).dags)["target.py"] == b"T" * 20_000


@pytest.mark.parametrize("action", ["cut", "corrupt"])
def test_body_always_broken_keeps_last_good(published, proxy: FaultProxy, action: str) -> None:
    bucket, root, good = published
    sync = make_sync(root, bucket)
    before = sync.dags.current_name()
    rule = proxy.add(Rule(is_get("target.py"), action))
    result = sync.run_cycle("test")
    assert not result.ok
    assert rule.hits >= 3, result.errors  # every attempt got the broken body
    assert sync.dags.current_name() == before
    assert tree(SyncLayout(root).dags) == good
    assert no_leftovers(root) == []


@pytest.mark.parametrize("action", ["status503", "status429"])
def test_throttling_is_retried_with_backoff(published, proxy: FaultProxy, action: str) -> None:
    bucket, root, _ = published
    listing = proxy.add(Rule(lambda m, p: "list-type" in p, action, times=2))
    gets = proxy.add(Rule(is_get("f3.py"), action, times=2))
    sync = make_sync(root, bucket)
    result = sync.run_cycle("test")
    assert result.ok, result.summary()
    assert (listing.hits, gets.hits) == (2, 2)
    assert tree(SyncLayout(root).dags)["f3.py"] == b"v2 3\n" * 50


def test_throttling_that_never_ends_keeps_last_good(published, proxy: FaultProxy) -> None:
    bucket, root, good = published
    sync = make_sync(root, bucket)
    before = sync.dags.current_name()
    proxy.add(Rule(is_get("f2.py"), "status503"))
    result = sync.run_cycle("test")
    assert not result.ok
    assert result.errors[0][:2] == ("dags", "throttled")
    assert sync.dags.current_name() == before
    assert tree(SyncLayout(root).dags) == good
    assert sync.metrics.errors.labels("throttled")._value.get() == 1


def test_server_stopped_mid_sync_keeps_last_good(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aws: str
) -> None:
    port = free_port()
    server = ManagedProcess(
        "moto-private",
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        tmp_path / "moto.log",
    ).start()
    try:
        wait_until(lambda: server.check_alive() or port_open(port), 60, "private moto server")
        endpoint = f"http://127.0.0.1:{port}"
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
        client = boto3.client("s3", endpoint_url=endpoint)
        bucket = new_bucket(client)
        client.put_object(Bucket=bucket, Key="dags/first.py", Body=b"first\n")
        root = tmp_path / "root"
        first = make_sync(root, bucket)
        assert first.run_cycle("test").ok
        first.close()
        for i in range(40):
            client.put_object(Bucket=bucket, Key=f"dags/many/{i}.py", Body=b"x" * 1000)
        downloaded: list[str] = []

        def stop_server_after_three(rel: str) -> None:
            downloaded.append(rel)
            if len(downloaded) == 3:
                server.stop()

        sync = make_sync(root, bucket, parallelism=2, on_progress=stop_server_after_three)
        before = sync.dags.current_name()
        result = sync.run_cycle("test")
        assert not result.ok
        assert result.errors[0][:2] == ("dags", "connection"), result.errors
        assert 3 <= len(downloaded) < 40
        assert sync.dags.current_name() == before
        assert tree(SyncLayout(root).dags) == {"first.py": b"first\n"}
        assert no_leftovers(root) == []
    finally:
        server.stop()


def test_disk_full_keeps_last_good(s3c: Any, aws: str, tmp_path: Path) -> None:
    """A real 1 MiB tmpfs (in a private mount namespace) runs out of space mid-sync."""
    bucket = new_bucket(s3c)
    s3c.put_object(Bucket=bucket, Key="small/a.py", Body=b"a = 1\n")
    s3c.put_object(Bucket=bucket, Key="big/a.py", Body=b"a = 2\n")
    s3c.put_object(Bucket=bucket, Key="big/blob.bin", Body=os.urandom(3 * 1024 * 1024))
    root = tmp_path / "tmpfs"
    root.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    cli = Path(sys.executable).parent / "airflow-platform"
    sync = f"{cli} dagsync --bucket {bucket} --root {root} --health-port 0 --once"
    script = f"""
set -u
mount -t tmpfs -o size=1m tmpfs {root} || exit 99
{sync} --dags-prefix small/ > {out}/first.log 2>&1; echo $? > {out}/first.rc
{sync} --dags-prefix big/ > {out}/second.log 2>&1; echo $? > {out}/second.rc
readlink {root}/dags/current > {out}/current
cat {root}/dags/current/a.py > {out}/a.py
ls -A {root}/dags/.versions > {out}/versions
"""
    env = {**os.environ, **AWS_TEST_ENV, "AWS_ENDPOINT_URL": aws, "AWS_MAX_ATTEMPTS": "2"}
    done = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode == 99 or "Operation not permitted" in done.stderr:
        pytest.fail(f"cannot mount a tmpfs in a user namespace here: {done.stderr}")
    assert (out / "first.rc").read_text().strip() == "0", (out / "first.log").read_text()
    assert (out / "second.rc").read_text().strip() == "1", (out / "second.log").read_text()
    second_log = (out / "second.log").read_text()
    assert "disk_full" in second_log and "No space left on device" in second_log
    assert (out / "a.py").read_text() == "a = 1\n"  # still the first version
    versions = (out / "versions").read_text().split()
    assert len(versions) == 1 and (out / "current").read_text().strip().endswith("/tree")
