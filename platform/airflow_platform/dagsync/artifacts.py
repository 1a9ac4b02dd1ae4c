"""plugins.zip, requirements.txt and startup.sh: fetched by S3 object version when one is
pinned (MWAA semantics), the latest object otherwise, and only when the key, version or
ETag changed. plugins.zip is unpacked into a versioned folder swapped like the DAGs."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from airflow_platform.dagsync.aws import is_not_found
from airflow_platform.dagsync.fetch import download
from airflow_platform.dagsync.limits import artifact_limit
from airflow_platform.dagsync.manifest import clean_etag
from airflow_platform.dagsync.safezip import UnsafeArchive, extract
from airflow_platform.dagsync.settings import DagsyncSettings
from airflow_platform.dagsync.versions import VersionStore, fsync_dir
from airflow_platform.paths import SyncLayout


class ArtifactError(RuntimeError):
    """An artifact could not be fetched or was refused; the previous one stays."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Source:
    """Which object an artifact came from."""

    key: str
    version_id: str
    etag: str
    size: int


@dataclass(frozen=True)
class ArtifactOutcome:
    name: str  # plugins | requirements | startup
    changed: bool
    source: Source | None


class ArtifactSync:
    def __init__(self, settings: DagsyncSettings, client: Any, layout: SyncLayout) -> None:
        self.settings = settings
        self.client = client
        self.layout = layout
        self.plugins = VersionStore(layout.plugins.parent)
        self._rejected: dict[Source, str] = {}

    def prepare(self) -> None:
        self.plugins.prepare()
        for path in (self.layout.requirements, self.layout.startup_script):
            path.parent.mkdir(parents=True, exist_ok=True)
            for child in path.parent.glob(".tmp-*"):
                child.unlink(missing_ok=True)

    # -- which object ------------------------------------------------------------------
    def _flag(self, name: str) -> str:
        return f"--{name}-key/--{name}-version (DAGSYNC_{name.upper()}_KEY/_VERSION)"

    def _resolve(self, name: str, key: str, version: str, previous: Source | None) -> Source:
        # A pinned version never changes: no request needed once we hold it.
        if version and previous and previous.key == key and previous.version_id == version:
            return previous
        params: dict[str, Any] = {"Bucket": self.settings.bucket, "Key": key}
        if version:
            params["VersionId"] = version
        try:
            head = self.client.head_object(**params)
        except Exception as exc:
            if is_not_found(exc) or "InvalidArgument" in str(exc):
                what = f"s3://{self.settings.bucket}/{key}" + (
                    f" version {version}" if version else ""
                )
                raise ArtifactError(
                    "not_found", f"{name}: {what} does not exist; check {self._flag(name)}"
                ) from None
            raise
        source = Source(
            key=key,
            version_id=str(head.get("VersionId") or version or ""),
            etag=clean_etag(head.get("ETag", "")),
            size=int(head.get("ContentLength", 0)),
        )
        # Refused on the announced size, before anything is downloaded.
        artifact_limit(self.settings, name).check(self.settings.bucket, key, source.size)
        return source

    # -- plugins.zip -------------------------------------------------------------------
    def sync_plugins(self) -> ArtifactOutcome:
        key, version = self.settings.plugins_key, self.settings.plugins_version
        meta = self.plugins.current_meta() or {}
        previous = Source(**meta["source"]) if meta.get("source") else None
        if not key:
            # Airflow's plugins_folder must exist: publish an empty one once.
            if self.plugins.current_name() is None or previous is not None:
                build = self.plugins.begin()
                try:
                    self.plugins.publish(build, "empty", {"kind": "plugins", "source": None})
                except BaseException:
                    build.discard()
                    raise
                self.plugins.prune()
                return ArtifactOutcome("plugins", True, None)
            return ArtifactOutcome("plugins", False, None)
        source = self._resolve("plugins", key, version, previous)
        if source == previous and self.plugins.current_name():
            return ArtifactOutcome("plugins", False, source)
        if source in self._rejected:
            raise ArtifactError("plugins_rejected", self._rejected[source])
        build = self.plugins.begin()
        try:
            archive = build.tmp / "plugins.zip"
            fetched = download(
                self.client,
                self.settings.bucket,
                key,
                archive,
                version_id=source.version_id,
                limit=artifact_limit(self.settings, "plugins"),
            )
            source = Source(
                key, fetched.version_id or source.version_id, fetched.etag, fetched.size
            )
            try:
                files, size = extract(
                    archive,
                    build.tree,
                    max_entries=self.settings.plugins_max_entries,
                    max_bytes=self.settings.plugins_max_bytes,
                )
            except UnsafeArchive as exc:
                message = (
                    f"plugins: s3://{self.settings.bucket}/{key} (version "
                    f"{source.version_id or 'latest'}) refused: {exc}; the previous plugins "
                    "stay in place"
                )
                self._rejected[source] = message
                raise ArtifactError("plugins_rejected", message) from None
            self.plugins.publish(
                build,
                hashlib.sha256(f"{source.etag}/{source.version_id}".encode()).hexdigest(),
                {"kind": "plugins", "source": asdict(source), "files": files, "bytes": size},
            )
        except BaseException:
            build.discard()
            raise
        self.plugins.prune()
        return ArtifactOutcome("plugins", True, source)

    # -- requirements.txt / startup.sh ------------------------------------------------------
    def sync_file(self, name: str) -> ArtifactOutcome:
        if name == "requirements":
            target, key = self.layout.requirements, self.settings.requirements_key
            version = self.settings.requirements_version
        else:
            target, key = self.layout.startup_script, self.settings.startup_key
            version = self.settings.startup_version
        state_path = target.parent / ".source.json"
        previous = _read_source(state_path)
        if not key:
            # Not configured: a file left from an earlier configuration must not be used.
            existed = target.exists()
            target.unlink(missing_ok=True)
            state_path.unlink(missing_ok=True)
            return ArtifactOutcome(name, existed, None)
        source = self._resolve(name, key, version, previous)
        if source == previous and target.exists():
            return ArtifactOutcome(name, False, source)
        staging = target.parent / f".tmp-{uuid.uuid4().hex[:12]}"
        try:
            fetched = download(
                self.client,
                self.settings.bucket,
                key,
                staging,
                version_id=source.version_id,
                fsync=True,
                limit=artifact_limit(self.settings, name),
            )
            os.chmod(staging, 0o755 if name == "startup" else 0o644)
            os.replace(staging, target)
        except BaseException:
            staging.unlink(missing_ok=True)
            raise
        source = Source(key, fetched.version_id or source.version_id, fetched.etag, fetched.size)
        _write_source(state_path, source)
        fsync_dir(target.parent)
        return ArtifactOutcome(name, True, source)


def _read_source(path: Path) -> Source | None:
    try:
        return Source(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _write_source(path: Path, source: Source) -> None:
    staging = path.with_name(f".tmp-{uuid.uuid4().hex[:12]}")
    try:
        staging.write_text(json.dumps(asdict(source)))
        os.replace(staging, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            staging.unlink()
