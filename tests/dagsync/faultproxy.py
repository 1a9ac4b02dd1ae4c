"""A small real HTTP proxy in front of the moto server that misbehaves on request:
answers throttling errors, cuts response bodies half-way, or flips a byte. The client
under test speaks real HTTP to it; nothing inside boto3 is replaced."""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from airflow_platform.procs import free_port

SLOWDOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)
TOO_MANY = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>TooManyRequests</Code>'
    b"<Message>Too many requests.</Message></Error>"
)


@dataclass
class Rule:
    """Misbehave `times` times (None: forever) on requests matching `match`."""

    match: Callable[[str, str], bool]  # (method, path) -> bool
    action: str  # "status503" | "status429" | "cut" | "corrupt"
    times: int | None = None
    hits: int = 0


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.rules: list[Rule] = []
        self.lock = threading.Lock()
        self.requests = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _any(self) -> None:
                proxy._serve(self)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add(self, rule: Rule) -> Rule:
        with self.lock:
            self.rules.append(rule)
        return rule

    def _pick(self, method: str, path: str) -> str | None:
        with self.lock:
            self.requests += 1
            for rule in self.rules:
                if (rule.times is None or rule.hits < rule.times) and rule.match(method, path):
                    rule.hits += 1
                    return rule.action
        return None

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        method, path = handler.command, handler.path
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        action = self._pick(method, path)
        if action in ("status503", "status429"):
            payload = SLOWDOWN if action == "status503" else TOO_MANY
            handler.send_response(503 if action == "status503" else 429)
            handler.send_header("Content-Type", "application/xml")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
            return
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=30)
        try:
            headers = {k: v for k, v in handler.headers.items() if k.lower() != "connection"}
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        handler.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("connection", "transfer-encoding", "content-length"):
                handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if method == "HEAD":
            return
        if action == "cut" and len(data) > 1:
            handler.wfile.write(data[: len(data) // 2])
            handler.wfile.flush()
            # Drop the connection with the body half sent.
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        if action == "corrupt" and data:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        handler.wfile.write(data)
