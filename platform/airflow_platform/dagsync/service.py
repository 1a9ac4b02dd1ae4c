"""The dagsync process: one sync cycle (`--once`, the init container) or the loop (the
sidecar) that reconciles every interval and syncs at once when an S3 event arrives."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from airflow_platform.dagsync.artifacts import ArtifactError, ArtifactOutcome, ArtifactSync
from airflow_platform.dagsync.aws import error_kind, s3_client, sns_client, sqs_client
from airflow_platform.dagsync.bucket_rules import check_bucket
from airflow_platform.dagsync.dags import Cancelled, DagMirror, DagsOutcome
from airflow_platform.dagsync.events import EventBatch, EventListener
from airflow_platform.dagsync.fanout import EventSetupError, FanoutKeeper, FanoutQueue
from airflow_platform.dagsync.limits import Refused
from airflow_platform.dagsync.reaper import Reaper
from airflow_platform.dagsync.settings import DagsyncSettings
from airflow_platform.dagsync.telemetry import HealthServer, Metrics
from airflow_platform.dagsync.versions import VersionStore
from airflow_platform.paths import SyncLayout

LOG = logging.getLogger("airflow_platform.dagsync")
# A burst of uploads becomes one sync: wait until no event came for QUIET_SECONDS, but
# never longer than MAX_DEBOUNCE_SECONDS after the first.
QUIET_SECONDS = 0.05
MAX_DEBOUNCE_SECONDS = 0.5
LOGGED_KEYS = 20  # keys listed per change kind in the sync log line
MAX_EVENT_KEYS = 500  # beyond this a full listing is cheaper than per-key requests
RETRY_AFTER_FAILURE = (2.0, 5.0, 10.0, 20.0)


class BucketRulesRefused(RuntimeError):
    pass


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


class DagSync:
    def __init__(
        self,
        settings: DagsyncSettings,
        on_progress: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.layout = SyncLayout(settings.root)
        self.stop = threading.Event()
        self._wake = threading.Event()
        self.metrics = Metrics()
        self.client = s3_client(settings.parallelism)
        self.dags = VersionStore(self.layout.dags.parent)
        self.mirror = DagMirror(settings, self.client, self.dags, self.stop, on_progress)
        self.artifacts = ArtifactSync(settings, self.client, self.layout)
        self.ready = False
        # What the bucket holds that was refused, by part: kept until that part syncs.
        self.refusals: dict[str, tuple[str, str]] = {}
        self.listener: EventListener | None = None
        self.fanout: FanoutQueue | None = None
        self.keeper: FanoutKeeper | None = None
        self.health: HealthServer | None = None
        self._lock_fd: int | None = None

    # -- setup ---------------------------------------------------------------------------
    def prepare(self) -> None:
        root = self.settings.root
        root.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(root / ".dagsync.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            LOG.info("another dagsync holds the sync root; waiting", extra={"root": str(root)})
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        self.dags.prepare()
        self.artifacts.prepare()

    def close(self) -> None:
        self.mirror.close()
        if self.health is not None:
            self.health.stop()
            self.health = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def check_bucket_rules(self) -> None:
        problems = check_bucket(self.client, self.settings.bucket)
        for problem in problems:
            self.metrics.errors.labels("bucket_rule").inc()
            LOG.warning(problem, extra={"event": "bucket_rule", "strict": self.settings.strict})
        if problems and self.settings.strict:
            raise BucketRulesRefused(
                "refusing to sync (--strict/DAGSYNC_STRICT): " + "; ".join(problems)
            )

    def request_stop(self) -> None:
        self.stop.set()
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    # -- one cycle -----------------------------------------------------------------------
    def _relevant(self, key: str) -> bool:
        return key.startswith(self.settings.dags_prefix) or key in self.settings.artifact_keys

    def run_cycle(self, trigger: str, keys: set[str] | None = None) -> CycleResult:
        started = time.monotonic()
        result = CycleResult(ok=True)
        dag_keys = (
            None if keys is None else {k for k in keys if k not in self.settings.artifact_keys}
        )
        try:
            if dag_keys is None or dag_keys:
                result.checked.add("dags")
                result.dags = self._sync_dags(dag_keys)
        except Cancelled:
            raise
        except Refused as exc:
            self._refuse(result, "dags", exc.reason, exc)
        except Exception as exc:
            self._fail(result, "dags", error_kind(exc), exc)
        if keys is None or keys & self.settings.artifact_keys or not self.ready:
            for name, step in (
                ("plugins", self.artifacts.sync_plugins),
                ("requirements", lambda: self.artifacts.sync_file("requirements")),
                ("startup", lambda: self.artifacts.sync_file("startup")),
            ):
                if self.stop.is_set():
                    raise Cancelled("stopping")
                result.checked.add(name)
                try:
                    result.artifacts.append(step())
                except Refused as exc:
                    self._refuse(result, name, exc.reason, exc)
                except ArtifactError as exc:
                    if exc.kind == "plugins_rejected":  # a hostile or broken zip
                        self._refuse(result, name, exc.kind, exc)
                        continue
                    self._fail(result, name, exc.kind, exc)
                except Exception as exc:
                    self._fail(result, name, error_kind(exc), exc)
        self._record(trigger, result, time.monotonic() - started)
        return result

    def _sync_dags(self, keys: set[str] | None) -> DagsOutcome:
        if keys is not None and len(keys) <= MAX_EVENT_KEYS:
            outcome = self.mirror.sync_named(keys)
            if outcome is not None:
                return outcome
        desired, skipped = self.mirror.list_desired()
        return self.mirror.sync(desired, skipped)

    def _fail(self, result: CycleResult, part: str, kind: str, exc: BaseException) -> None:
        result.ok = False
        result.errors.append((part, kind, str(exc) or type(exc).__name__))
        self.metrics.errors.labels(kind).inc()

    def _refuse(self, result: CycleResult, part: str, reason: str, exc: BaseException) -> None:
        self._fail(result, part, reason, exc)
        result.refused[part] = (reason, str(exc))

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

    def _record(self, trigger: str, result: CycleResult, duration: float) -> None:
        self._track_refusals(result)
        m = self.metrics
        m.duration.labels(trigger).observe(duration)
        fields: dict[str, Any] = {
            "event": "sync",
            "trigger": trigger,
            "duration_s": round(duration, 3),
        }
        d = result.dags
        if d is not None:
            m.objects.set(d.objects)
            m.bytes.set(d.total_bytes)
            if d.newest_modified:
                m.newest_object.set(d.newest_modified)
            if d.version:
                m.versions.labels("dags").inc()
                m.publish_lag.set(max(0.0, time.time() - d.newest_modified))
            m.downloaded.inc(d.downloaded_bytes)
            m.fetched.inc(len(d.diff.added) + len(d.diff.changed))
            fields.update(
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

    # -- modes ---------------------------------------------------------------------------
    def run_once(self) -> CycleResult:
        self.prepare()
        self.check_bucket_rules()
        return self.run_cycle("once")

    def run_forever(self) -> None:
        """Loop until request_stop(); returns after a clean stop."""
        self.prepare()
        self.check_bucket_rules()
        if self.settings.health_port:
            self.health = HealthServer(
                self.settings.health_host,
                self.settings.health_port,
                self.metrics,
                lambda: self.ready,
                self.status,
            )
            self.health.start()
        if self.settings.event_topic_arn:
            self._start_fanout()
        elif self.settings.event_queue_url:
            self.listener = EventListener(
                sqs_client(self.settings.event_queue_url),
                self.settings.event_queue_url,
                self.settings.bucket,
                self._relevant,
                self.wake,
                self.stop,
                self._count_error,
            )
            self.listener.start()
        LOG.info(
            "dagsync started",
            extra={
                "bucket": self.settings.bucket,
                "dags_prefix": self.settings.dags_prefix,
                "root": str(self.settings.root),
                "interval_s": self.settings.interval,
                "events": (
                    "topic"
                    if self.settings.event_topic_arn
                    else "queue"
                    if self.settings.event_queue_url
                    else "off"
                ),
            },
        )
        failures = 0
        next_reconcile = time.monotonic()
        try:
            while not self.stop.is_set():
                woke = self._wake.wait(max(0.0, next_reconcile - time.monotonic()))
                if self.stop.is_set():
                    break
                batch = EventBatch()
                if woke:
                    self._settle()
                    if self.stop.is_set():
                        break
                    batch = self.listener.take() if self.listener else EventBatch()
                    if not batch:
                        continue
                    result = self.run_cycle("event", None if batch.full else batch.keys)
                else:
                    # A full listing covers every event received so far.
                    batch = self.listener.take() if self.listener else EventBatch()
                    result = self.run_cycle("reconcile")
                    next_reconcile = time.monotonic() + self.settings.interval
                if result.ok:
                    failures = 0
                    if self.listener and batch:
                        self.listener.ack(batch)
                else:
                    if self.listener and batch:
                        self.listener.give_back(batch)
                    delay = RETRY_AFTER_FAILURE[min(failures, len(RETRY_AFTER_FAILURE) - 1)]
                    failures += 1
                    next_reconcile = min(next_reconcile, time.monotonic() + delay)
        except Cancelled:
            pass
        finally:
            self.stop.set()
            if self.keeper:
                self.keeper.join(timeout=5.0)
            if self.fanout:
                self.fanout.close()
            if self.listener:
                self.listener.join(timeout=1.0)
            LOG.info("dagsync stopped", extra={"current": self.dags.current_name()})

    def _settle(self) -> None:
        """Return once events stopped arriving (see QUIET_SECONDS) or on stop."""
        deadline = time.monotonic() + MAX_DEBOUNCE_SECONDS
        self._wake.clear()
        while not self.stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0 or not self._wake.wait(min(QUIET_SECONDS, left)):
                return
            self._wake.clear()

    def _count_error(self, kind: str) -> None:
        self.metrics.errors.labels(kind).inc()

    def _start_fanout(self) -> None:
        """Own queue on the topic, subscribed BEFORE the first reconcile: a change made
        after the subscription arrives as an event, one made before is in the listing."""
        s = self.settings
        topic_region = s.event_topic_arn.split(":")[3]
        fanout = FanoutQueue(
            s, sqs_client(fallback_region=topic_region), sns_client(topic_region), self.metrics
        )
        self.fanout = fanout
        url = ""
        try:
            url = fanout.open()
        except EventSetupError:
            raise
        except Exception as exc:  # transient: the listener keeps trying, reconcile runs
            self._count_error("events_setup")
            LOG.warning(
                "cannot set up the event queue yet; retrying, the periodic reconcile continues",
                extra={"event": "fanout", "error": str(exc)},
            )
        self.listener = EventListener(
            fanout.sqs,
            url,
            s.bucket,
            self._relevant,
            self.wake,
            self.stop,
            self._count_error,
            recover=fanout.reopen,
        )
        self.listener.start()
        self.keeper = FanoutKeeper(
            fanout,
            Reaper(fanout, s.event_orphan_after).run_pass,
            heartbeat_every=s.event_heartbeat,
            # Orphans wait at most orphan_after + reap_every (about 1.4x orphan_after).
            reap_every=s.event_orphan_after / 3,
            stop=self.stop,
            on_error=self._count_error,
        )
        self.keeper.start()


def install_signal_handlers(sync: DagSync) -> None:
    def handler(signum: int, _frame: Any) -> None:
        LOG.info("stopping", extra={"signal": signal.Signals(signum).name})
        sync.request_stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(ValueError):  # not the main thread (embedded use)
            signal.signal(sig, handler)
