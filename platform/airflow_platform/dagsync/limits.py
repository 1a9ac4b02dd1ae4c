"""Caps on what a bucket may make dagsync write: object size, DAGs folder size and file
count, plugins.zip, requirements.txt and startup.sh. Checked on the sizes S3 announces
(listing, HEAD, the GET's Content-Length) before a byte is written, so a bucket writer
cannot fill the node's disk; a refused bucket leaves the last good version published."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from airflow_platform.dagsync.manifest import ObjectEntry
from airflow_platform.dagsync.settings import DagsyncSettings

LISTED_OFFENDERS = 5  # oversized keys named in one message


class Refused(RuntimeError):
    """The bucket holds more than the limits allow; nothing was written or published."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # object_too_large | too_many_files | total_too_large | ...


def human(size: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


class Admission(Protocol):
    def check(self, bucket: str, key: str, size: int) -> None:
        """Raise Refused when an object of `size` bytes may not be written."""


@dataclass(frozen=True)
class SizeLimit:
    """The largest one object may be; `setting` names the chart value and the flag."""

    max_bytes: int
    reason: str
    setting: str

    def check(self, bucket: str, key: str, size: int) -> None:
        if size > self.max_bytes:
            raise Refused(
                self.reason,
                f"s3://{bucket}/{key} is {human(size)}, over the limit of "
                f"{human(self.max_bytes)} ({self.setting}); nothing was downloaded",
            )


def dag_object_limit(settings: DagsyncSettings) -> SizeLimit:
    return SizeLimit(
        settings.max_object_bytes,
        "object_too_large",
        "dags.sync.maxObjectBytes, --max-object-bytes/DAGSYNC_MAX_OBJECT_BYTES",
    )


def artifact_limit(settings: DagsyncSettings, name: str) -> SizeLimit:
    if name == "plugins":
        # A zip is never much larger than what it inflates to.
        return SizeLimit(
            settings.plugins_max_bytes,
            "plugins_too_large",
            "--plugins-max-bytes/DAGSYNC_PLUGINS_MAX_BYTES",
        )
    return SizeLimit(
        settings.max_script_bytes,
        f"{name}_too_large",
        "dags.sync.maxScriptBytes, --max-script-bytes/DAGSYNC_MAX_SCRIPT_BYTES",
    )


def too_many_files(settings: DagsyncSettings, count: str) -> Refused:
    return Refused(
        "too_many_files",
        f"s3://{settings.bucket}/{settings.dags_prefix} holds {count} files, over the limit of "
        f"{settings.max_files} (dags.sync.maxFiles, --max-files/DAGSYNC_MAX_FILES); remove "
        "files or raise the limit",
    )


def check_dags(settings: DagsyncSettings, entries: Mapping[str, ObjectEntry]) -> None:
    """Refuse a DAGs folder over the limits, naming the largest offenders."""
    bucket, prefix = settings.bucket, settings.dags_prefix
    where = f"s3://{bucket}/{prefix}"
    big = sorted(
        (e for e in entries.values() if e.size > settings.max_object_bytes),
        key=lambda e: -e.size,
    )
    if big:
        named = ", ".join(f"{e.key} ({human(e.size)})" for e in big[:LISTED_OFFENDERS])
        more = f" and {len(big) - LISTED_OFFENDERS} more" if len(big) > LISTED_OFFENDERS else ""
        raise Refused(
            "object_too_large",
            f"{where} holds objects over the limit of {human(settings.max_object_bytes)} per "
            f"object: {named}{more} (dags.sync.maxObjectBytes, --max-object-bytes/"
            "DAGSYNC_MAX_OBJECT_BYTES); remove them or raise the limit",
        )
    if len(entries) > settings.max_files:
        raise too_many_files(settings, str(len(entries)))
    total = sum(e.size for e in entries.values())
    if total > settings.max_total_bytes:
        raise Refused(
            "total_too_large",
            f"{where} holds {human(total)}, over the limit of "
            f"{human(settings.max_total_bytes)} (dags.sync.maxTotalBytes, --max-total-bytes/"
            "DAGSYNC_MAX_TOTAL_BYTES); remove files or raise the limit",
        )


@dataclass
class TotalBudget:
    """The event path's admission: each GET reserves its Content-Length before writing, so
    the DAGs folder cannot pass the total even before the new version is checked whole."""

    settings: DagsyncSettings
    used: int  # bytes of the published objects the events did not name
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, bucket: str, key: str, size: int) -> None:
        dag_object_limit(self.settings).check(bucket, key, size)
        limit = self.settings.max_total_bytes
        with self._lock:
            if self.used + size > limit:
                raise Refused(
                    "total_too_large",
                    f"s3://{bucket}/{key} ({human(size)}) would take the DAGs folder past the "
                    f"limit of {human(limit)} (dags.sync.maxTotalBytes, --max-total-bytes/"
                    "DAGSYNC_MAX_TOTAL_BYTES); remove files or raise the limit",
                )
            self.used += size
