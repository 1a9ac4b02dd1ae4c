"""Mirroring the DAGs prefix: hierarchy, any file type, deletions, unicode, empty prefix,
large files, incremental hard-linking, pruning."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from airflow_platform.dagsync import versions
from airflow_platform.dagsync.fetch import download_if_changed
from airflow_platform.paths import SyncLayout

from .support import make_sync, new_bucket, tree

pytestmark = pytest.mark.integration


def put(s3c: Any, bucket: str, key: str, body: bytes) -> None:
    s3c.put_object(Bucket=bucket, Key=key, Body=body)


def test_add_change_delete_nested_and_any_file_type(s3c: Any, bucket: str, tmp_path: Path) -> None:
    put(s3c, bucket, "dags/a.py", b"a = 1\n")
    put(s3c, bucket, "dags/team/etl/b.py", b"b = 1\n")
    put(s3c, bucket, "dags/team/etl/sql/q.sql", b"select 1;\n")
    put(s3c, bucket, "dags/.airflowignore", b"scratch/\n")
    put(s3c, bucket, "dags/team/", b"")  # a console "folder" marker
    put(s3c, bucket, "outside/c.py", b"c = 1\n")
    sync = make_sync(tmp_path, bucket)
    first = sync.run_cycle("test")
    assert first.ok, first.summary()
    layout = SyncLayout(tmp_path)
    assert tree(layout.dags) == {
        ".airflowignore": b"scratch/\n",
        "a.py": b"a = 1\n",
        "team/etl/b.py": b"b = 1\n",
        "team/etl/sql/q.sql": b"select 1;\n",
    }
    assert layout.ready_file.exists() and sync.ready

    put(s3c, bucket, "dags/a.py", b"a = 2\n")
    s3c.delete_object(Bucket=bucket, Key="dags/team/etl/sql/q.sql")
    put(s3c, bucket, "dags/new.py", b"n = 1\n")
    second = sync.run_cycle("test")
    assert second.ok and second.dags is not None and second.dags.version
    assert second.dags.diff.added == ["new.py"]
    assert second.dags.diff.changed == ["a.py"]
    assert second.dags.diff.deleted == ["team/etl/sql/q.sql"]
    files = tree(layout.dags)
    assert files == {
        ".airflowignore": b"scratch/\n",
        "a.py": b"a = 2\n",
        "new.py": b"n = 1\n",
        "team/etl/b.py": b"b = 1\n",
    }
    # Unchanged files are hard links into the previous version, not new downloads.
    old_tree = layout.dags.parent / ".versions" / first.dags.version / "tree"  # type: ignore[union-attr]
    assert (
        os.stat(old_tree / "team/etl/b.py").st_ino == os.stat(layout.dags / "team/etl/b.py").st_ino
    )
    assert second.dags.downloaded_bytes == len(b"a = 2\n") + len(b"n = 1\n")

    # Nothing changed: nothing is published.
    third = sync.run_cycle("test")
    assert third.ok and third.dags is not None and third.dags.version is None
    assert sync.dags.current_name() == second.dags.version


def test_event_path_reads_only_the_named_keys(s3c: Any, bucket: str, tmp_path: Path) -> None:
    """Keys an event named are re-read with one conditional GET each: a changed key is
    fetched, an unchanged one costs no download, a deleted one disappears, a new one
    arrives; keys nobody named are not looked at (that is the reconcile's job)."""
    for name in ("a", "b", "c", "d"):
        put(s3c, bucket, f"dags/{name}.py", f"{name} = 1\n".encode())
    sync = make_sync(tmp_path, bucket)
    first = sync.run_cycle("test")
    assert first.ok, first.summary()
    layout = SyncLayout(tmp_path)

    etag = s3c.head_object(Bucket=bucket, Key="dags/b.py")["ETag"].strip('"')
    probe = tmp_path / "probe"
    assert download_if_changed(s3c, bucket, "dags/b.py", probe, etag) is None
    assert not probe.exists()
    duplicate = sync.run_cycle("event", {"dags/b.py"})  # an event delivered twice
    assert duplicate.ok and duplicate.dags is not None
    assert duplicate.dags.version is None and duplicate.dags.downloaded_bytes == 0

    put(s3c, bucket, "dags/a.py", b"a = 22\n")
    s3c.delete_object(Bucket=bucket, Key="dags/c.py")
    put(s3c, bucket, "dags/sub/e.py", b"e = 1\n")
    put(s3c, bucket, "dags/d.py", b"d = 2\n")  # changed, but no event names it
    second = sync.run_cycle("event", {"dags/a.py", "dags/b.py", "dags/c.py", "dags/sub/e.py"})
    assert second.ok and second.dags is not None and second.dags.version
    assert (second.dags.diff.added, second.dags.diff.changed, second.dags.diff.deleted) == (
        ["sub/e.py"],
        ["a.py"],
        ["c.py"],
    )
    assert second.dags.downloaded_bytes == len(b"a = 22\n") + len(b"e = 1\n")
    assert tree(layout.dags) == {
        "a.py": b"a = 22\n",
        "b.py": b"b = 1\n",
        "d.py": b"d = 1\n",
        "sub/e.py": b"e = 1\n",
    }
    assert not any((layout.dags.parent / ".versions").glob(".building-*"))

    reconcile = sync.run_cycle("test")  # the safety net finds what no event named
    assert reconcile.ok and reconcile.dags is not None and reconcile.dags.diff.changed == ["d.py"]
    assert tree(layout.dags)["d.py"] == b"d = 2\n"


def test_unicode_keys_and_unsafe_keys(s3c: Any, bucket: str, tmp_path: Path) -> None:
    put(s3c, bucket, "dags/données/été 2024.py", "é = 1\n".encode())
    put(s3c, bucket, "dags/日本/ダグ.py", b"x = 1\n")
    put(s3c, bucket, "dags/emoji 🚀+plus&amp.py", b"y = 1\n")
    put(s3c, bucket, "dags/x/../escape.py", b"no\n")
    put(s3c, bucket, "dags/double//slash.py", b"no\n")
    put(s3c, bucket, "dags/clash", b"file\n")
    put(s3c, bucket, "dags/clash/inner.py", b"folder wins\n")
    sync = make_sync(tmp_path, bucket)
    result = sync.run_cycle("test")
    assert result.ok, result.summary()
    assert tree(SyncLayout(tmp_path).dags) == {
        "clash/inner.py": b"folder wins\n",
        "données/été 2024.py": "é = 1\n".encode(),
        "emoji 🚀+plus&amp.py": b"y = 1\n",
        "日本/ダグ.py": b"x = 1\n",
    }
    assert result.dags is not None
    assert sorted(result.dags.skipped_keys) == [
        "dags/clash",
        "dags/double//slash.py",
        "dags/x/../escape.py",
    ]


def test_empty_prefix_mirrors_the_bucket_except_artifacts(s3c: Any, tmp_path: Path) -> None:
    bucket = new_bucket(s3c)
    put(s3c, bucket, "top.py", b"t = 1\n")
    put(s3c, bucket, "nested/deep/n.py", b"n = 1\n")
    put(s3c, bucket, "requirements.txt", b"requests\n")
    put(s3c, bucket, "startup.sh", b"echo hi\n")
    sync = make_sync(
        tmp_path,
        bucket,
        dags_prefix="",
        requirements_key="requirements.txt",
        startup_key="startup.sh",
    )
    result = sync.run_cycle("test")
    assert result.ok, result.summary()
    layout = SyncLayout(tmp_path)
    assert tree(layout.dags) == {"top.py": b"t = 1\n", "nested/deep/n.py": b"n = 1\n"}
    assert layout.requirements.read_bytes() == b"requests\n"
    assert layout.startup_script.read_bytes() == b"echo hi\n"


def test_prefix_without_slash_does_not_match_siblings(
    s3c: Any, bucket: str, tmp_path: Path
) -> None:
    put(s3c, bucket, "dags/a.py", b"a\n")
    put(s3c, bucket, "dags2/b.py", b"b\n")
    sync = make_sync(tmp_path, bucket, dags_prefix="dags")
    assert sync.run_cycle("test").ok
    assert tree(SyncLayout(tmp_path).dags) == {"a.py": b"a\n"}


def test_large_files_arrive_whole(s3c: Any, bucket: str, tmp_path: Path) -> None:
    big = os.urandom(6 * 1024 * 1024 + 123)
    put(s3c, bucket, "dags/data/model.bin", big)
    # A multipart object has a non-MD5 ETag ("...-2"): verified by size.
    upload = s3c.create_multipart_upload(Bucket=bucket, Key="dags/data/multi.bin")
    parts = []
    chunks = [os.urandom(5 * 1024 * 1024), os.urandom(1024 * 1024)]
    for number, chunk in enumerate(chunks, start=1):
        etag = s3c.upload_part(
            Bucket=bucket,
            Key="dags/data/multi.bin",
            PartNumber=number,
            UploadId=upload["UploadId"],
            Body=chunk,
        )["ETag"]
        parts.append({"ETag": etag, "PartNumber": number})
    s3c.complete_multipart_upload(
        Bucket=bucket,
        Key="dags/data/multi.bin",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": parts},
    )
    sync = make_sync(tmp_path, bucket, parallelism=4)
    result = sync.run_cycle("test")
    assert result.ok, result.summary()
    files = tree(SyncLayout(tmp_path).dags)
    assert files["data/model.bin"] == big
    assert files["data/multi.bin"] == b"".join(chunks)


def test_old_versions_are_pruned_but_current_kept(
    s3c: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(versions, "RETAIN_SECONDS", 0.0)
    sync = make_sync(tmp_path, bucket)
    for generation in range(6):
        put(s3c, bucket, "dags/g.py", f"g = {generation}\n".encode())
        assert sync.run_cycle("test").ok
    names = sorted(p.name for p in (tmp_path / "dags" / ".versions").iterdir())
    assert len(names) == versions.KEEP_VERSIONS
    assert sync.dags.current_name() == names[-1]
    assert tree(SyncLayout(tmp_path).dags) == {"g.py": b"g = 5\n"}


def test_versions_retired_together_are_pruned_in_one_pass(
    s3c: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Versions kept for their retention window all expire at once: the next publish removes
    them in one pass, and still reports the file it added (the DAG processor is told)."""
    sync = make_sync(tmp_path, bucket)
    for generation in range(7):  # all within the retention window: every one kept
        put(s3c, bucket, "dags/g.py", f"g = {generation}\n".encode())
        assert sync.run_cycle("test").ok
    kept = sorted(p.name for p in (tmp_path / "dags" / ".versions").iterdir())
    assert len(kept) == 7
    monkeypatch.setattr(versions, "RETAIN_SECONDS", 0.0)
    put(s3c, bucket, "dags/new.py", b"new = 1\n")
    result = sync.run_cycle("test")
    assert result.ok, result.summary()
    assert result.dags is not None and result.dags.diff.added == ["new.py"]
    names = sorted(p.name for p in (tmp_path / "dags" / ".versions").iterdir())
    assert len(names) == versions.KEEP_VERSIONS
    assert tree(SyncLayout(tmp_path).dags) == {"g.py": b"g = 6\n", "new.py": b"new = 1\n"}


def test_interrupted_build_is_cleaned_on_start(s3c: Any, bucket: str, tmp_path: Path) -> None:
    put(s3c, bucket, "dags/a.py", b"a\n")
    sync = make_sync(tmp_path, bucket)
    assert sync.run_cycle("test").ok
    sync.close()
    leftover = tmp_path / "dags" / ".versions" / ".building-deadbeef"
    (leftover / "tree").mkdir(parents=True)
    restarted = make_sync(tmp_path, bucket)
    assert not leftover.exists()
    assert restarted.run_cycle("test").ok
    assert tree(SyncLayout(tmp_path).dags) == {"a.py": b"a\n"}
