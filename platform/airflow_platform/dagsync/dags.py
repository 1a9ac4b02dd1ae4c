"""Mirror the DAGs prefix into a new version: list (or refresh the keys an event named),
diff against the current manifest, hard-link what is unchanged, download the rest in
parallel, verify, publish."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_platform.dagsync.aws import is_not_found
from airflow_platform.dagsync.fetch import Fetched, download
from airflow_platform.dagsync.manifest import (
    Diff,
    Manifest,
    ObjectEntry,
    clean_etag,
    diff,
    drop_path_conflicts,
    local_path,
)
from airflow_platform.dagsync.settings import DagsyncSettings
from airflow_platform.dagsync.versions import VersionStore

MANIFEST = "manifest.json"
# Per-file fdatasync would cost one disk flush per DAG file; the tree is published by a
# rename that readers on this node see through the shared page cache, and a node crash
# loses the pod's emptyDir anyway. Directories and metadata are fsynced at publish.
FSYNC_FILES = False


class Cancelled(Exception):
    """The service is stopping; the half-built version was discarded."""


@dataclass
class DagsOutcome:
    version: str | None  # None: nothing changed, nothing published
    diff: Diff
    objects: int
    total_bytes: int
    downloaded_bytes: int
    newest_modified: float
    skipped_keys: list[str] = field(default_factory=list)


class DagMirror:
    def __init__(
        self,
        settings: DagsyncSettings,
        client: Any,
        store: VersionStore,
        stop: threading.Event,
        on_progress: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.store = store
        self.stop = stop
        self.on_progress = on_progress

    # -- what S3 holds -------------------------------------------------------------
    def list_desired(self) -> tuple[dict[str, ObjectEntry], list[str]]:
        prefix = self.settings.dags_prefix
        desired: dict[str, ObjectEntry] = {}
        skipped: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.settings.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if key in self.settings.artifact_keys:
                    continue
                rel = local_path(key, prefix)
                if rel is None:
                    if not key.endswith("/"):
                        skipped.append(key)
                    continue
                desired[rel] = ObjectEntry(
                    key=key,
                    etag=clean_etag(obj.get("ETag", "")),
                    size=int(obj.get("Size", 0)),
                    last_modified=obj["LastModified"].timestamp() if "LastModified" in obj else 0,
                )
        kept, conflicts = drop_path_conflicts(desired)
        return kept, skipped + conflicts

    def refreshed_desired(self, keys: Iterable[str]) -> dict[str, ObjectEntry] | None:
        """The current manifest with only `keys` re-read from S3 (an event named them).
        None when there is no published version to start from."""
        previous = self.previous_manifest()
        if previous is None:
            return None
        desired = dict(previous.entries)
        prefix = self.settings.dags_prefix
        for key in keys:
            if key in self.settings.artifact_keys:
                continue
            rel = local_path(key, prefix)
            if rel is None:
                continue
            try:
                head = self.client.head_object(Bucket=self.settings.bucket, Key=key)
            except Exception as exc:
                if not is_not_found(exc):
                    raise
                desired.pop(rel, None)
                continue
            desired[rel] = ObjectEntry(
                key=key,
                etag=clean_etag(head.get("ETag", "")),
                size=int(head.get("ContentLength", 0)),
                version_id=str(head.get("VersionId") or ""),
                last_modified=head["LastModified"].timestamp() if "LastModified" in head else 0,
            )
        kept, _ = drop_path_conflicts(desired)
        return kept

    def previous_manifest(self) -> Manifest | None:
        name = self.store.current_name()
        if name is None:
            return None
        try:
            return Manifest.load(self.store.versions / name / MANIFEST)
        except (OSError, ValueError, KeyError, TypeError):
            return Manifest()  # unreadable: rebuild everything

    # -- building a version ----------------------------------------------------------
    def sync(
        self, desired: dict[str, ObjectEntry], skipped: list[str] | None = None
    ) -> DagsOutcome:
        previous = self.previous_manifest()
        changes = diff(previous or Manifest(), desired)
        newest = max((e.last_modified for e in desired.values()), default=0.0)
        if previous is not None and changes.empty:
            return DagsOutcome(
                None,
                changes,
                len(desired),
                sum(e.size for e in desired.values()),
                0,
                newest,
                skipped or [],
            )
        build = self.store.begin()
        try:
            entries, downloaded = self._build(build.tree, build.tmp, previous, desired, changes)
            manifest = Manifest(entries)
            manifest.save(build.path / MANIFEST)
            digest = hashlib.sha256(
                "\n".join(f"{r}\t{e.etag}\t{e.size}" for r, e in sorted(entries.items())).encode()
            ).hexdigest()
            name = self.store.publish(
                build,
                digest,
                {"kind": "dags", "objects": len(entries), "bytes": manifest.total_bytes},
            )
        except BaseException:
            build.discard()
            raise
        self.store.prune()
        return DagsOutcome(
            name, changes, len(entries), manifest.total_bytes, downloaded, newest, skipped or []
        )

    def _build(
        self,
        tree: Path,
        tmp: Path,
        previous: Manifest | None,
        desired: dict[str, ObjectEntry],
        changes: Diff,
    ) -> tuple[dict[str, ObjectEntry], int]:
        for folder in sorted({os.path.dirname(rel) for rel in desired} - {""}):
            os.makedirs(tree / folder, exist_ok=True)
        entries: dict[str, ObjectEntry] = {}
        to_fetch = list(changes.added) + list(changes.changed)
        old_tree = self.store.current_tree()
        for rel in changes.unchanged:
            assert previous is not None
            try:
                assert old_tree is not None
                os.link(old_tree / rel, tree / rel)
            except (OSError, AssertionError):
                to_fetch.append(rel)  # the old copy is gone or unlinkable: fetch again
                continue
            entries[rel] = previous.entries[rel]
        downloaded = 0
        if to_fetch:
            for rel, fetched in self._fetch_all(tree, tmp, desired, to_fetch):
                entries[rel] = ObjectEntry(
                    key=fetched.key,
                    etag=fetched.etag,
                    size=fetched.size,
                    version_id=fetched.version_id,
                    last_modified=fetched.last_modified,
                )
                downloaded += fetched.size
        return entries, downloaded

    def _fetch_all(
        self, tree: Path, tmp: Path, desired: dict[str, ObjectEntry], rels: list[str]
    ) -> list[tuple[str, Fetched]]:
        bucket = self.settings.bucket

        def fetch(index: int, rel: str) -> tuple[str, Fetched]:
            if self.stop.is_set():
                raise Cancelled("stopping")
            staging = tmp / str(index)
            fetched = download(self.client, bucket, desired[rel].key, staging, fsync=FSYNC_FILES)
            os.rename(staging, tree / rel)
            if self.on_progress is not None:
                self.on_progress(rel)
            return rel, fetched

        workers = min(self.settings.parallelism, len(rels))
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dagsync-get")
        try:
            futures = [pool.submit(fetch, i, rel) for i, rel in enumerate(rels)]
            done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            for future in done:
                if future.exception() is not None:
                    for other in pending:
                        other.cancel()
                    raise future.exception()  # type: ignore[misc]
            return [f.result() for f in futures]
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
