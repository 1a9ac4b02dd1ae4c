"""Tiny JSON-over-HTTP helpers (stdlib only, so the CLI imports nothing extra)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


def request(
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as err:
        raw = err.read()
        status = err.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def status_of(url: str, timeout: float = 3.0) -> int | None:
    """HTTP status of a GET, or None when nothing answers."""
    try:
        return request("GET", url, timeout=timeout)[0]
    except (OSError, urllib.error.URLError):
        return None
