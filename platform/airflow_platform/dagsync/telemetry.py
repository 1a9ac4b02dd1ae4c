"""Readiness, Prometheus metrics over HTTP, and the process's logs (airflow_platform.logs)."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from airflow_platform.logs import JsonFormatter as JsonFormatter
from airflow_platform.logs import setup_logging as setup_platform_logging


def setup_logging() -> None:
    setup_platform_logging("dagsync", "airflow_platform.dagsync")
    # boto's own retry chatter stays out of the structured stream.
    logging.getLogger("botocore").setLevel(logging.WARNING)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.ready = Gauge("dagsync_ready", "1 once a first sync published everything", registry=r)
        self.last_success = Gauge(
            "dagsync_last_success_timestamp_seconds", "End of the last good sync", registry=r
        )
        self.objects = Gauge("dagsync_objects", "Objects in the published DAGs version", registry=r)
        self.bytes = Gauge("dagsync_bytes", "Bytes in the published DAGs version", registry=r)
        self.newest_object = Gauge(
            "dagsync_newest_object_timestamp_seconds",
            "LastModified of the newest object in the published DAGs version",
            registry=r,
        )
        self.publish_lag = Gauge(
            "dagsync_publish_lag_seconds",
            "At the last publish: seconds between the newest change in S3 and its publication",
            registry=r,
        )
        self.lag = Gauge(
            "dagsync_lag_seconds",
            "Seconds since the last good sync (how stale the published DAGs may be)",
            registry=r,
        )
        self.lag.set_function(self._lag)
        self.duration = Histogram(
            "dagsync_sync_duration_seconds",
            "Duration of sync cycles",
            ["trigger"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
            registry=r,
        )
        self.syncs = Counter(
            "dagsync_syncs", "Sync cycles by trigger and result", ["trigger", "result"], registry=r
        )
        self.errors = Counter("dagsync_errors", "Errors by kind", ["kind"], registry=r)
        self.refused = Gauge(
            "dagsync_refused",
            "1 while a part of the bucket (dags, plugins, requirements, startup) is refused "
            "for passing a limit or being unsafe; the last good version stays published",
            ["part", "reason"],
            registry=r,
        )
        self.downloaded = Counter(
            "dagsync_downloaded_bytes", "Bytes downloaded from S3", registry=r
        )
        self.fetched = Counter("dagsync_downloaded_objects", "Objects downloaded", registry=r)
        self.versions = Counter(
            "dagsync_published_versions", "Versions published", ["kind"], registry=r
        )
        # Fan-out mode (--event-topic-arn): this process's own queue on the topic.
        self.event_subscribed = Gauge(
            "dagsync_event_subscribed",
            "1 while this process's own queue is subscribed to the event topic",
            registry=r,
        )
        self.event_subscriptions = Counter(
            "dagsync_event_subscriptions",
            "Own queue subscribed to / unsubscribed from the event topic",
            ["action"],
            registry=r,
        )
        self.event_heartbeat = Gauge(
            "dagsync_event_heartbeat_timestamp_seconds",
            "Last heartbeat tag written on this process's own event queue",
            registry=r,
        )
        self.event_reaped = Counter(
            "dagsync_event_orphans_reaped",
            "Queues and subscriptions of dead dagsync processes removed by this one",
            ["kind", "reason"],
            registry=r,
        )
        self._last_success = 0.0
        self._started = time.time()

    def _lag(self) -> float:
        return time.time() - (self._last_success or self._started)

    def success(self, at: float) -> None:
        self._last_success = at
        self.last_success.set(at)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _IPv6Server(ThreadingHTTPServer):
    # The pod IP of an IPv6 cluster (the chart binds the pod IP, not every interface).
    address_family = socket.AF_INET6


class HealthServer:
    """GET /healthz (process alive), /readyz (200 after the first good sync), /metrics,
    /status (JSON: readiness, the published version, what the bucket holds that is refused)."""

    def __init__(
        self,
        host: str,
        port: int,
        metrics: Metrics,
        is_ready: Any,
        status: Any = dict,
    ) -> None:
        metrics_ref, ready_ref, status_ref = metrics, is_ready, status

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    self._send(200, b"ok\n", "text/plain")
                elif path == "/readyz":
                    ok = ready_ref()
                    self._send(
                        200 if ok else 503, b"ready\n" if ok else b"not ready\n", "text/plain"
                    )
                elif path == "/metrics":
                    self._send(200, metrics_ref.render(), CONTENT_TYPE_LATEST)
                elif path == "/status":
                    body = json.dumps(status_ref()).encode() + b"\n"
                    self._send(200, body, "application/json")
                else:
                    self._send(404, b"not found\n", "text/plain")

            def _send(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # probes every few seconds would drown the sync log

        server_class = _IPv6Server if ":" in host else ThreadingHTTPServer
        self.server = server_class((host, port), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="dagsync-health", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
