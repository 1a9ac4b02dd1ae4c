"""What a sync cycle did, and where it is told: metrics, the sync log line, the refusal
state /status serves and the ready file the Airflow containers wait for."""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from airflow_platform.dagsync.artifacts import ArtifactOutcome, ArtifactSync
from airflow_platform.dagsync.dags import DagsOutcome
from airflow_platform.dagsync.telemetry import Metrics
from airflow_platform.dagsync.versions import VersionStore
from airflow_platform.paths import SyncLayout

LOG = logging.getLogger("airflow_platform.dagsync")
LOGGED_KEYS = 20  # keys listed per change kind in the sync log line


@dataclass
class CycleResult:
    ok: bool
    dags: DagsOutcome | None = None
    artifacts: list[ArtifactOutcome] = field(default_factory=list)
    errors: list[tuple[str, str, str]] = field(default_factory=list)  # (part, kind, message)
    checked: set[str] = field(default_factory=set)  # parts this cycle looked at
    refused: dict[str, tuple[str, str]] = field(default_factory=dict)  # part -> (reason, msg)

    def summary(self) -> str:
        if not self.ok:
            return "; ".join(f"{part}: {message}" for part, _, message in self.errors)
        parts = []
        if self.dags is not None:
            d = self.dags
            state = f"published {d.version}" if d.version else "unchanged"
            parts.append(f"dags {state} ({d.objects} objects, {d.total_bytes} bytes)")
        parts += [f"{a.name} {'updated' if a.changed else 'unchanged'}" for a in self.artifacts]
        return ", ".join(parts)

    def fail(self, part: str, kind: str, exc: BaseException) -> None:
        self.ok = False
        self.errors.append((part, kind, str(exc) or type(exc).__name__))

    def refuse(self, part: str, reason: str, exc: BaseException) -> None:
        self.fail(part, reason, exc)
        self.refused[part] = (reason, str(exc))


class Recorder:
    def __init__(
        self,
        metrics: Metrics,
        layout: SyncLayout,
        dags: VersionStore,
        artifacts: ArtifactSync,
    ) -> None:
        self.metrics = metrics
        self.layout = layout
        self.dags = dags
        self.artifacts = artifacts
        self.ready = False
        # What the bucket holds that was refused, by part: kept until that part syncs.
        self.refusals: dict[str, tuple[str, str]] = {}

    def status(self) -> dict[str, Any]:
        """What /status serves: readiness, the published version and any refusal."""
        return {
            "ready": self.ready,
            "dags_version": self.dags.current_name(),
            "refused": [
                {"part": part, "reason": reason, "message": message}
                for part, (reason, message) in sorted(self.refusals.items())
            ],
        }

    def _track_refusals(self, result: CycleResult) -> None:
        """Keep the refusal state (metrics, /status, log) in step with this cycle."""
        for part in result.checked:
            before = self.refusals.get(part)
            now = result.refused.get(part)
            if before == now:
                continue
            if before is not None:
                self.metrics.refused.remove(part, before[0])
            if now is None:
                del self.refusals[part]
                LOG.info("bucket accepted again", extra={"event": "refused", "part": part})
                continue
            self.refusals[part] = now
            self.metrics.refused.labels(part, now[0]).set(1)
            LOG.error(
                f"bucket refused: {now[1]}",
                extra={"event": "refused", "part": part, "reason": now[0]},
            )

    def record(self, trigger: str, result: CycleResult, duration: float) -> None:
        self._track_refusals(result)
        m = self.metrics
        for _, kind, _ in result.errors:
            m.errors.labels(kind).inc()
        m.duration.labels(trigger).observe(duration)
        fields: dict[str, Any] = {
            "event": "sync",
            "trigger": trigger,
            "duration_s": round(duration, 3),
        }
        d = result.dags
        if d is not None:
            fields.update(self._dags_fields(d))
        for a in result.artifacts:
            if a.changed:
                m.versions.labels(a.name).inc()
                fields[f"{a.name}_updated"] = True
                if a.source is not None:
                    fields[f"{a.name}_source"] = {
                        "key": a.source.key,
                        "version_id": a.source.version_id,
                    }
        if result.ok:
            now = time.time()
            m.success(now)
            m.syncs.labels(trigger, "success").inc()
            if not self.ready:
                self._mark_ready(now)
            LOG.info("sync ok", extra={"result": "success", **fields})
        else:
            m.syncs.labels(trigger, "failure").inc()
            fields["errors"] = [
                {"part": p, "kind": k, "message": msg} for p, k, msg in result.errors
            ]
            LOG.error(
                "sync failed; the last good version stays published",
                extra={"result": "failure", "current": self.dags.current_name(), **fields},
            )

    def _dags_fields(self, d: DagsOutcome) -> dict[str, Any]:
        m = self.metrics
        m.objects.set(d.objects)
        m.bytes.set(d.total_bytes)
        if d.newest_modified:
            m.newest_object.set(d.newest_modified)
        if d.version:
            m.versions.labels("dags").inc()
            m.publish_lag.set(max(0.0, time.time() - d.newest_modified))
        m.downloaded.inc(d.downloaded_bytes)
        m.fetched.inc(len(d.diff.added) + len(d.diff.changed))
        fields: dict[str, Any] = dict(
            dags_version=d.version or self.dags.current_name(),
            published=d.version is not None,
            objects=d.objects,
            bytes=d.total_bytes,
            downloaded_bytes=d.downloaded_bytes,
            added=len(d.diff.added),
            changed=len(d.diff.changed),
            deleted=len(d.diff.deleted),
            added_keys=d.diff.added[:LOGGED_KEYS],
            changed_keys=d.diff.changed[:LOGGED_KEYS],
            deleted_keys=d.diff.deleted[:LOGGED_KEYS],
        )
        if d.skipped_keys:
            fields["skipped_keys"] = d.skipped_keys[:LOGGED_KEYS]
            fields["skipped"] = len(d.skipped_keys)
        return fields

    def _mark_ready(self, at: float) -> None:
        info = {
            "at": at,
            "dags_version": self.dags.current_name(),
            "plugins_version": self.artifacts.plugins.current_name(),
        }
        path = self.layout.ready_file
        staging = path.with_name(f".ready-{uuid.uuid4().hex[:8]}")
        staging.write_text(json.dumps(info))
        os.replace(staging, path)
        self.ready = True
        self.metrics.ready.set(1)
