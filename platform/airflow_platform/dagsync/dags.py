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
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from airflow_platform.dagsync.aws import is_not_found
from airflow_platform.dagsync.fetch import Fetched, download, download_if_changed
from airflow_platform.dagsync.limits import (
    Admission,
    TotalBudget,
    check_dags,
    dag_object_limit,
    too_many_files,
)
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
from airflow_platform.dagsync.versions import Build, VersionStore

MANIFEST = "manifest.json"
# Per-file fdatasync would cost one disk flush per DAG file; the tree is published by a
# rename that readers on this node see through the shared page cache, and a node crash
# loses the pod's emptyDir anyway. Directories and metadata are fsynced at publish.
FSYNC_FILES = False
_T = TypeVar("_T")
# What a conditional GET of a key an event named can answer besides the new bytes.
GONE = object()
UNCHANGED = object()


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
        # One pool for the life of the sidecar: starting its threads anew costs tens of
        # milliseconds, a third of an event-driven sync of a few keys.
        self._pool: ThreadPoolExecutor | None = None
        self._manifest: tuple[str, Manifest] | None = None  # the current version's, parsed
        self._limit = dag_object_limit(settings)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _run_all(self, calls: list[Callable[[], _T]]) -> list[_T]:
        """Run the calls on the pool; the first failure cancels the rest and is raised
        once every started call has ended (nothing writes into a discarded build)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=self.settings.parallelism, thread_name_prefix="dagsync-s3"
            )
        futures = [self._pool.submit(call) for call in calls]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((f for f in done if f.exception() is not None), None)
        if failed is not None:
            for other in pending:
                other.cancel()
            wait(pending)
            raise failed.exception()  # type: ignore[misc]
        return [f.result() for f in futures]

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
            if len(desired) > self.settings.max_files:
                # Stop listing: a bucket of millions of keys must not fill this process first.
                more = "at least " if page.get("IsTruncated") else ""
                raise too_many_files(self.settings, f"{more}{len(desired)}")
        kept, conflicts = drop_path_conflicts(desired)
        return kept, skipped + conflicts

    def sync_named(self, keys: Iterable[str]) -> DagsOutcome | None:
        """The event path: re-read only the keys events named, one conditional GET each
        (304: unchanged, 404: deleted, 200: the new bytes, already in the build). None when
        there is no published version to start from: the caller lists the prefix."""
        previous = self.previous_manifest()
        if previous is None:
            return None
        prefix = self.settings.dags_prefix
        named = {
            rel: key
            for key in sorted(keys)
            if key not in self.settings.artifact_keys
            and (rel := local_path(key, prefix)) is not None
        }
        budget = TotalBudget(
            self.settings, sum(e.size for r, e in previous.entries.items() if r not in named)
        )
        build = self.store.begin()
        try:
            answers = self._run_all(
                [
                    partial(
                        self._get_named,
                        build.tmp / str(i),
                        key,
                        previous.entries.get(rel),
                        budget,
                    )
                    for i, (rel, key) in enumerate(named.items())
                ]
            )
            desired = dict(previous.entries)
            staged: dict[str, tuple[Fetched, Path]] = {}
            for rel, (answer, staging) in zip(named, answers, strict=True):
                if answer is GONE:
                    desired.pop(rel, None)
                elif isinstance(answer, Fetched):
                    desired[rel] = _entry(answer)
                    staged[rel] = (answer, staging)
            desired, _ = drop_path_conflicts(desired)
            check_dags(self.settings, desired)
            changes = diff(previous, desired)
            if changes.empty:
                build.discard()
                return self._unchanged(previous, desired, changes, [])
            return self._publish(build, previous, desired, changes, [], staged)
        except BaseException:
            build.discard()
            raise

    def _get_named(
        self, staging: Path, key: str, known: ObjectEntry | None, budget: Admission
    ) -> tuple[Fetched | object, Path]:
        if self.stop.is_set():
            raise Cancelled("stopping")
        unless = known.etag if known is not None and known.key == key else ""
        try:
            fetched = download_if_changed(
                self.client,
                self.settings.bucket,
                key,
                staging,
                unless,
                fsync=FSYNC_FILES,
                limit=budget,
            )
        except Exception as exc:
            if not is_not_found(exc):
                raise
            return GONE, staging
        return (UNCHANGED if fetched is None else fetched), staging

    def previous_manifest(self) -> Manifest | None:
        name = self.store.current_name()
        if name is None:
            return None
        if self._manifest is not None and self._manifest[0] == name:
            return self._manifest[1]  # published versions never change
        try:
            manifest = Manifest.load(self.store.versions / name / MANIFEST)
        except (OSError, ValueError, KeyError, TypeError):
            return Manifest()  # unreadable: rebuild everything
        self._manifest = (name, manifest)
        return manifest

    # -- building a version ----------------------------------------------------------
    def sync(
        self, desired: dict[str, ObjectEntry], skipped: list[str] | None = None
    ) -> DagsOutcome:
        check_dags(self.settings, desired)  # on the listed sizes, before any download
        previous = self.previous_manifest()
        changes = diff(previous or Manifest(), desired)
        if previous is not None and changes.empty:
            return self._unchanged(previous, desired, changes, skipped or [])
        build = self.store.begin()
        try:
            return self._publish(build, previous, desired, changes, skipped or [], {})
        except BaseException:
            build.discard()
            raise

    @staticmethod
    def _unchanged(
        previous: Manifest, desired: dict[str, ObjectEntry], nothing: Diff, skipped: list[str]
    ) -> DagsOutcome:
        newest = max((e.last_modified for e in desired.values()), default=0.0)
        return DagsOutcome(None, nothing, len(desired), previous.total_bytes, 0, newest, skipped)

    def _publish(
        self,
        build: Build,
        previous: Manifest | None,
        desired: dict[str, ObjectEntry],
        changes: Diff,
        skipped: list[str],
        staged: dict[str, tuple[Fetched, Path]],
    ) -> DagsOutcome:
        """Fill the build (links, files already staged, downloads) and swap it in. The
        caller discards the build when this raises."""
        entries, downloaded = self._build(build, previous, desired, changes, staged)
        manifest = Manifest(entries)
        manifest.save(build.path / MANIFEST)
        digest = hashlib.sha256(
            "\n".join(f"{r}\t{e.etag}\t{e.size}" for r, e in sorted(entries.items())).encode()
        ).hexdigest()
        name = self.store.publish(
            build, digest, {"kind": "dags", "objects": len(entries), "bytes": manifest.total_bytes}
        )
        self._manifest = (name, manifest)
        self.store.prune()
        newest = max((e.last_modified for e in desired.values()), default=0.0)
        return DagsOutcome(
            name, changes, len(entries), manifest.total_bytes, downloaded, newest, skipped
        )

    def _build(
        self,
        build: Build,
        previous: Manifest | None,
        desired: dict[str, ObjectEntry],
        changes: Diff,
        staged: dict[str, tuple[Fetched, Path]],
    ) -> tuple[dict[str, ObjectEntry], int]:
        tree = build.tree
        for folder in sorted({os.path.dirname(rel) for rel in desired} - {""}):
            os.makedirs(tree / folder, exist_ok=True)
        entries: dict[str, ObjectEntry] = {}
        downloaded = 0
        to_fetch: list[str] = []
        for rel in [*changes.added, *changes.changed]:
            if rel in staged:
                fetched, staging = staged[rel]
                os.rename(staging, tree / rel)
                entries[rel] = _entry(fetched)
                downloaded += fetched.size
            else:
                to_fetch.append(rel)
        old_tree = self.store.current_tree()
        if changes.unchanged:
            assert previous is not None
            old, new = f"{old_tree}/", f"{tree}/"
            for rel in changes.unchanged:
                try:
                    if old_tree is None:
                        raise FileNotFoundError(rel)
                    os.link(old + rel, new + rel)
                except OSError:
                    to_fetch.append(rel)  # the old copy is gone or unlinkable: fetch again
                    continue
                entries[rel] = previous.entries[rel]
        for rel, fetched in self._fetch_all(tree, build.tmp, desired, to_fetch):
            entries[rel] = _entry(fetched)
            downloaded += fetched.size
        return entries, downloaded

    def _fetch_all(
        self, tree: Path, tmp: Path, desired: dict[str, ObjectEntry], rels: list[str]
    ) -> list[tuple[str, Fetched]]:
        bucket = self.settings.bucket

        def fetch(index: int, rel: str) -> tuple[str, Fetched]:
            if self.stop.is_set():
                raise Cancelled("stopping")
            staging = tmp / f"get-{index}"
            fetched = download(
                self.client,
                bucket,
                desired[rel].key,
                staging,
                fsync=FSYNC_FILES,
                limit=self._limit,
            )
            os.rename(staging, tree / rel)
            if self.on_progress is not None:
                self.on_progress(rel)
            return rel, fetched

        return self._run_all([partial(fetch, i, rel) for i, rel in enumerate(rels)])


def _entry(fetched: Fetched) -> ObjectEntry:
    return ObjectEntry(
        key=fetched.key,
        etag=fetched.etag,
        size=fetched.size,
        version_id=fetched.version_id,
        last_modified=fetched.last_modified,
    )
