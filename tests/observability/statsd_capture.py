"""A StatsD UDP listener on 127.0.0.1 that keeps every line it receives."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Sample:
    at: float
    name: str
    value: float
    kind: str  # c, g, ms, s, h


def parse_line(line: str, at: float) -> Sample | None:
    """`name:value|type[|@rate][|#tags]` -> Sample (None for a malformed line)."""
    try:
        name, rest = line.split(":", 1)
        fields = rest.split("|")
        return Sample(at, name, float(fields[0]), fields[1])
    except (ValueError, IndexError):
        return None


class StatsdCapture:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="statsd-capture", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                continue
            now = time.time()
            parsed = [parse_line(line, now) for line in data.decode().splitlines() if line]
            with self._lock:
                self.samples += [s for s in parsed if s]

    def names(self) -> set[str]:
        with self._lock:
            return {s.name for s in self.samples}

    def snapshot(self) -> list[Sample]:
        with self._lock:
            return list(self.samples)

    def __enter__(self) -> StatsdCapture:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()
