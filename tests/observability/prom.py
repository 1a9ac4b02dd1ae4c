"""Debian's Prometheus (promtool and the server) for the tests."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_platform.procs import free_port, port_open, wait_until

RULES = Path(__file__).resolve().parents[2] / "manifests" / "alerts" / "airflow-platform-rules.yaml"


def need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{binary} not found: ./scripts/bootstrap.sh installs Debian's prometheus")
    return path


def rule_groups_file(directory: Path) -> Path:
    """The PrometheusRule's groups as a plain Prometheus rule file."""
    out = directory / RULES.name
    out.write_text(yaml.safe_dump(yaml.safe_load(RULES.read_text())["spec"]))
    return out


class Prometheus:
    """A real Prometheus server on 127.0.0.1, stopped by PID."""

    def __init__(self, workdir: Path, config: dict[str, Any], tsdb: Path | None = None) -> None:
        self.port = free_port()
        self.config_file = workdir / "prometheus.yml"
        self.config_file.write_text(yaml.safe_dump(config))
        self.log = workdir / "prometheus.log"
        self.tsdb = tsdb or workdir / "tsdb"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Prometheus:
        self.proc = subprocess.Popen(
            [
                need("prometheus"),
                f"--config.file={self.config_file}",
                f"--storage.tsdb.path={self.tsdb}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=30d",
            ],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        wait_until(lambda: port_open(self.port) or self._died(), 60, "prometheus to listen", 0.2)
        wait_until(self._ready, 60, "prometheus to be ready", 0.2)
        return self

    def _died(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited: {self.log.read_text()[-3000:]}")
        return False

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"query": expr} | ({"time": f"{at:.3f}"} if at else {})
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                body = json.load(response)
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{expr!r}: {error.read().decode()}") from error
        assert body["status"] == "success", body
        return body["data"]["result"]

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_for_series(prom: Prometheus, expr: str, timeout: float = 60) -> list[dict[str, Any]]:
    return wait_until(lambda: prom.query(expr) or None, timeout, f"{expr} in prometheus", 0.5)
