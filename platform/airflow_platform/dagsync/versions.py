"""Versioned directories behind an atomically swapped `current` symlink.

    <base>/current -> .versions/<seq>-<digest>/tree
    <base>/.versions/<seq>-<digest>/{tree/, meta.json}
    <base>/.versions/.building-<random>/   (private until published)

A version is built completely in a private directory, renamed into place, and only then
made visible by replacing `current` with one rename(2) of a fresh symlink. Published
versions are never modified, so a reader that resolves `current` once reads one version.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VERSIONS = ".versions"
BUILDING_PREFIX = ".building-"
# Old versions stay for readers still walking a path they resolved before a swap.
LOG = logging.getLogger("airflow_platform.dagsync")
KEEP_VERSIONS = 3
RETAIN_SECONDS = 60.0
MAX_RETAINED = 10


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _seq(name: str) -> int:
    head = name.split("-", 1)[0]
    return int(head) if head.isdigit() else -1


@dataclass
class Build:
    """A version under construction; publish() or discard() it."""

    store: VersionStore
    path: Path

    @property
    def tree(self) -> Path:
        return self.path / "tree"

    @property
    def tmp(self) -> Path:
        return self.path / "tmp"

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


class VersionStore:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.versions = base / VERSIONS
        self.current = base / "current"

    def prepare(self) -> None:
        """Create the folders and drop leftovers of an interrupted run."""
        self.versions.mkdir(parents=True, exist_ok=True)
        for child in self.versions.iterdir():
            if child.name.startswith(BUILDING_PREFIX):
                shutil.rmtree(child, ignore_errors=True)
        for child in self.base.iterdir():
            if child.name.startswith(".current-") and child.is_symlink():
                child.unlink(missing_ok=True)

    def current_name(self) -> str | None:
        try:
            target = os.readlink(self.current)
        except (FileNotFoundError, OSError):
            return None
        parts = Path(target).parts
        # Expected shape: .versions/<name>/tree
        if (
            len(parts) == 3
            and parts[0] == VERSIONS
            and parts[2] == "tree"
            and (self.versions / parts[1] / "tree").is_dir()
        ):
            return parts[1]
        return None

    def current_tree(self) -> Path | None:
        name = self.current_name()
        return self.versions / name / "tree" if name else None

    def current_meta(self) -> dict[str, Any] | None:
        name = self.current_name()
        if not name:
            return None
        try:
            return json.loads((self.versions / name / "meta.json").read_text())
        except (OSError, ValueError):
            return None

    def begin(self) -> Build:
        path = self.versions / f"{BUILDING_PREFIX}{uuid.uuid4().hex[:12]}"
        (path / "tree").mkdir(parents=True)
        (path / "tmp").mkdir()
        return Build(self, path)

    def publish(self, build: Build, digest: str, meta: dict[str, Any]) -> str:
        """Seal the build, move it into place and swap `current` to it; return its name."""
        shutil.rmtree(build.tmp, ignore_errors=True)
        meta_path = build.path / "meta.json"
        with open(meta_path, "w") as fh:
            json.dump(meta, fh, ensure_ascii=False, separators=(",", ":"))
            fh.flush()
            os.fsync(fh.fileno())
        seq = max((_seq(c.name) for c in self.versions.iterdir()), default=0)
        seq = max(seq, 0) + 1
        name = f"{seq:08d}-{digest[:12]}"
        os.rename(build.path, self.versions / name)
        fsync_dir(self.versions)
        self._swap(name)
        return name

    def _swap(self, name: str) -> None:
        staged = self.base / f".current-{uuid.uuid4().hex[:12]}"
        os.symlink(f"{VERSIONS}/{name}/tree", staged)
        try:
            os.replace(staged, self.current)
        except OSError:
            staged.unlink(missing_ok=True)
            raise
        fsync_dir(self.base)

    def prune(self) -> list[str]:
        """Remove old versions: keep the newest few, anything published recently (up to
        a cap), and always the one `current` points to. Never raises: it runs after a
        version is published, and a version it cannot remove now goes at a later pass."""
        current = self.current_name()
        names = sorted(
            (c.name for c in self.versions.iterdir() if _seq(c.name) >= 0), key=_seq, reverse=True
        )
        # A version stops being current when its successor is published. Read every
        # publish time before removing anything: one pass can remove neighbours.
        published: dict[str, float] = {}
        for name in names:
            with contextlib.suppress(OSError):
                published[name] = (self.versions / name).stat().st_mtime
        now = time.time()
        removed = []
        for index, name in enumerate(names):
            if name == current or index < KEEP_VERSIONS:
                continue
            retired_at = published.get(names[index - 1], now) if index else now
            if index < MAX_RETAINED and now - retired_at < RETAIN_SECONDS:
                continue
            try:
                shutil.rmtree(self.versions / name)
            except FileNotFoundError:
                pass
            except OSError as exc:
                LOG.warning("could not remove old version %s (retried later): %s", name, exc)
                continue
            removed.append(name)
        return removed
