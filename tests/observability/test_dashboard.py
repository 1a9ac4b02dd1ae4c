"""Every dashboard query is parsed and evaluated by a real Prometheus (Debian's 2.42)
against a local run's series: Airflow's StatsD stream recorded by test_local_run.py
(data/statsd-local-run.txt) mapped with the chart's mapping and loaded as a TSDB block,
and a live dagsync /metrics endpoint the Prometheus scrapes. A panel whose query fails
or returns nothing fails the test; panels over kube-state-metrics (not run here) are
only parsed."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_platform.dagsync.telemetry import HealthServer, Metrics

from .metric_names import MAPPING, panel_exprs
from .prom import Prometheus, need, wait_for_series
from .recorded_series import openmetrics

pytestmark = pytest.mark.integration

RECORDING = Path(__file__).parent / "data" / "statsd-local-run.txt"
NEEDS_KUBE_STATE_METRICS = "kube_"


@pytest.fixture(scope="module")
def dagsync_metrics() -> Iterator[int]:
    """A real dagsync metrics endpoint that has lived through a few syncs."""
    metrics = Metrics()
    for trigger, result in (("initial", "success"), ("event", "success"), ("reconcile", "failure")):
        metrics.syncs.labels(trigger, result).inc()
        metrics.duration.labels(trigger).observe(0.3)
    metrics.errors.labels("s3").inc()
    metrics.success(time.time() - 3)
    server = HealthServer("127.0.0.1", 0, metrics, lambda: True)
    server.start()
    yield server.port
    server.stop()


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory, dagsync_metrics: int) -> Iterator[Prometheus]:
    work = tmp_path_factory.mktemp("prometheus")
    (work / "airflow.om").write_text(
        openmetrics(
            RECORDING,
            MAPPING,
            end=time.time() - 20,
            extra={"namespace": "airflow", "job": "statsd-exporter", "instance": "recorded"},
        )
    )
    tsdb = work / "tsdb"
    done = subprocess.run(
        [need("promtool"), "tsdb", "create-blocks-from", "openmetrics", "airflow.om", str(tsdb)],
        cwd=work,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "dagsync",
                "static_configs": [
                    {
                        "targets": [f"127.0.0.1:{dagsync_metrics}"],
                        "labels": {"namespace": "airflow", "pod": "scheduler-0"},
                    }
                ],
            }
        ],
    }
    with Prometheus(work, config, tsdb=tsdb) as prom:
        wait_for_series(prom, 'dagsync_lag_seconds{namespace="airflow"}')
        wait_for_series(prom, 'increase(dagsync_syncs_total{namespace="airflow"}[5m])')
        yield prom


def concrete(expr: str) -> str:
    return expr.replace("$namespace", "airflow")


PANELS = panel_exprs()


@pytest.mark.parametrize("title", sorted(PANELS))
def test_panel_query_is_valid_and_returns_data(prometheus: Prometheus, title: str) -> None:
    for expr in PANELS[title]:
        result = prometheus.query(concrete(expr))  # a syntax error fails here
        if NEEDS_KUBE_STATE_METRICS in expr:
            continue
        assert result, f"{title!r}: {expr} returned nothing from the local run's series"


def test_the_recording_is_from_a_run_of_real_airflow() -> None:
    names = {line.split(" ", 1)[1].split(":", 1)[0] for line in RECORDING.read_text().splitlines()}
    assert {"airflow.scheduler_heartbeat", "airflow.executor.queued_tasks"} <= names
    assert any(n.startswith("airflow.ti.finish.") for n in names)


def test_a_query_on_a_missing_series_would_fail_the_check(prometheus: Prometheus) -> None:
    assert prometheus.query('airflow_no_such_series{namespace="airflow"}') == []
    with pytest.raises(AssertionError, match="parse error"):
        prometheus.query("sum(rate(airflow_scheduler_heartbeat[1m])")
