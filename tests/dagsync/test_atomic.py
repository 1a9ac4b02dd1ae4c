"""Readers never see a mix of two versions or a partial one while versions are swapped."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

from airflow_platform.paths import SyncLayout

from .support import make_sync

pytestmark = pytest.mark.integration

GENERATIONS = 20
PAD = b"#" * 3000


def files_for(generation: int) -> list[str]:
    # The file set itself changes between generations: adds and deletes are swapped too.
    count = 12 + generation % 5
    return [f"d{i % 3}/sub{i % 2}/f{i}.py" for i in range(count)]


def body(generation: int, rel: str) -> bytes:
    return f"generation={generation} file={rel}\n".encode() + PAD + b"\nend\n"


def test_concurrent_reader_sees_whole_versions_only(s3c: Any, bucket: str, tmp_path: Path) -> None:
    layout = SyncLayout(tmp_path)
    expected: dict[int, set[str]] = {}
    stop = threading.Event()
    walks: list[int] = []
    problems: list[str] = []
    direct_reads = [0]

    def resolved_walker() -> None:
        # The reader protocol: resolve `current` once, then read that version.
        while not stop.is_set():
            try:
                target = Path(os.path.realpath(layout.dags))
            except OSError:
                continue
            if not target.is_dir():
                continue
            seen: dict[str, int] = {}
            for dirpath, _dirs, names in os.walk(target):
                for name in names:
                    path = Path(dirpath) / name
                    rel = str(path.relative_to(target))
                    try:
                        data = path.read_bytes()
                    except FileNotFoundError:
                        problems.append(f"{rel} vanished from a published version mid-walk")
                        continue
                    if not data.endswith(b"\nend\n"):
                        problems.append(f"partial file {rel}")
                    seen[rel] = int(data.split(b" ", 1)[0].split(b"=")[1])
            generations = set(seen.values())
            if len(generations) != 1:
                problems.append(f"mixed generations in one walk: {sorted(generations)}")
                continue
            generation = generations.pop()
            if set(seen) != expected[generation]:
                problems.append(f"generation {generation} incomplete: {len(seen)} files")
            walks.append(generation)

    def direct_reader() -> None:
        # Airflow opens files through the symlink: each file must be whole.
        while not stop.is_set():
            try:
                data = (layout.dags / "d0/sub0/f0.py").read_bytes()
            except FileNotFoundError:
                continue
            if not (data.startswith(b"generation=") and data.endswith(b"\nend\n")):
                problems.append("partial read through current")
            direct_reads[0] += 1

    sync = make_sync(tmp_path, bucket, parallelism=4)
    s3c.put_object(Bucket=bucket, Key="dags/d0/sub0/f0.py", Body=body(0, "d0/sub0/f0.py"))
    expected[0] = {"d0/sub0/f0.py"}
    assert sync.run_cycle("test").ok
    readers = [threading.Thread(target=resolved_walker), threading.Thread(target=direct_reader)]
    for reader in readers:
        reader.start()
    try:
        previous: set[str] = {"d0/sub0/f0.py"}
        for generation in range(1, GENERATIONS + 1):
            wanted = set(files_for(generation))
            expected[generation] = wanted
            for rel in wanted:
                s3c.put_object(Bucket=bucket, Key=f"dags/{rel}", Body=body(generation, rel))
            for rel in previous - wanted:
                s3c.delete_object(Bucket=bucket, Key=f"dags/{rel}")
            previous = wanted
            result = sync.run_cycle("test")
            assert result.ok, result.summary()
            assert result.dags is not None and result.dags.version
    finally:
        stop.set()
        for reader in readers:
            reader.join(timeout=30)
    assert not problems, problems[:5]
    # The readers really ran across many swaps.
    assert len(set(walks)) >= 3, walks
    assert direct_reads[0] > 0
