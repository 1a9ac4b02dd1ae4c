"""The dagsync process: one sync cycle (`--once`, the init container) or the loop (the
sidecar) that reconciles every interval and syncs at once when an S3 event arrives."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from airflow_platform.dagsync.artifacts import ArtifactError, ArtifactSync
from airflow_platform.dagsync.aws import error_kind, s3_client, sns_client, sqs_client
from airflow_platform.dagsync.bucket_rules import check_bucket
from airflow_platform.dagsync.dags import Cancelled, DagMirror, DagsOutcome
from airflow_platform.dagsync.events import EventBatch, EventListener
from airflow_platform.dagsync.fanout import EventSetupError, FanoutKeeper, FanoutQueue
from airflow_platform.dagsync.limits import Refused
from airflow_platform.dagsync.parse_requests import ParseRequests
from airflow_platform.dagsync.reaper import Reaper
from airflow_platform.dagsync.record import CycleResult, Recorder
from airflow_platform.dagsync.settings import DagsyncSettings
from airflow_platform.dagsync.telemetry import HealthServer, Metrics
from airflow_platform.dagsync.versions import VersionStore
from airflow_platform.paths import SyncLayout

LOG = logging.getLogger("airflow_platform.dagsync")
# A burst of uploads becomes one sync: wait until no event came for QUIET_SECONDS, but
# never longer than MAX_DEBOUNCE_SECONDS after the first.
QUIET_SECONDS = 0.05
MAX_DEBOUNCE_SECONDS = 0.5
MAX_EVENT_KEYS = 500  # beyond this a full listing is cheaper than per-key requests
RETRY_AFTER_FAILURE = (2.0, 5.0, 10.0, 20.0)


class BucketRulesRefused(RuntimeError):
    pass


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
        self.recorder = Recorder(self.metrics, self.layout, self.dags, self.artifacts)
        # The init container only publishes; the sidecar tells the DAG processor (when given
        # the database) what each later version changed.
        self.parse_requests: ParseRequests | None = None
        if settings.database_url and not settings.once:
            self.parse_requests = ParseRequests(settings.database_url, settings.dag_bundle)
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
        if self.parse_requests is not None:
            self.parse_requests.close()
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
        self.recorder.record(trigger, result, time.monotonic() - started)
        self._request_parsing(result)
        return result

    def _sync_dags(self, keys: set[str] | None) -> DagsOutcome:
        if keys is not None and len(keys) <= MAX_EVENT_KEYS:
            outcome = self.mirror.sync_named(keys)
            if outcome is not None:
                return outcome
        desired, skipped = self.mirror.list_desired()
        return self.mirror.sync(desired, skipped)

    def _fail(self, result: CycleResult, part: str, kind: str, exc: BaseException) -> None:
        result.fail(part, kind, exc)

    def _refuse(self, result: CycleResult, part: str, reason: str, exc: BaseException) -> None:
        result.refuse(part, reason, exc)

    def status(self) -> dict[str, Any]:
        return self.recorder.status()

    @property
    def ready(self) -> bool:
        return self.recorder.ready

    @property
    def refusals(self) -> dict[str, tuple[str, str]]:
        return self.recorder.refusals

    def _request_parsing(self, result: CycleResult) -> None:
        """After a published version: name what changed to the DAG processor."""
        requests, d = self.parse_requests, result.dags
        if requests is None:
            return
        paths: list[str] = []
        if d is not None and d.version is not None:
            paths = d.diff.added + d.diff.changed + d.diff.deleted
        if not paths and not requests.pending:
            return
        try:
            sent = requests.request(paths)
        except Exception as exc:  # the periodic listing still finds it; retried next sync
            self.metrics.errors.labels("parse_request").inc()
            LOG.warning(
                "cannot request parsing; retrying with the next sync",
                extra={"event": "parse_request", "error": str(exc)},
            )
            return
        if sent:
            LOG.info("parsing requested", extra={"event": "parse_request", "files": sent})

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
