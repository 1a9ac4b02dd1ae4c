"""Metric names: those Airflow can emit (its own registry) and those the platform's own code
sends through Airflow's Stats (the canary), those the mapping makes of them, and those the
alerts, panels and alarms use."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import yaml

from .statsd_mapping import Mapper

ROOT = Path(__file__).resolve().parents[2]
MAPPING = ROOT / "charts" / "airflow-platform" / "files" / "statsd-mapping.yaml"
RULES = ROOT / "manifests" / "alerts" / "airflow-platform-rules.yaml"
DASHBOARD = ROOT / "manifests" / "dashboards" / "airflow-platform.json"
PREFIX = "airflow"

# Sample values for the registry's name variables (a dot in a value would be "__").
SAMPLES = {
    "job_name": "SchedulerJob",
    "dag_id": "example_hello",
    "task_id": "world",
    "state": "success",
    "queue": "default",
    "pool_name": "default_pool",
    "executor_class_name": "CeleryExecutor",
    "operator_name": "PythonOperator",
    "task_type": "PythonOperator",
    "hostname": "triggerer-0",
    "bundle_name": "dags-folder",
    "file_name": "example_hello",
    "dag_file": "example_hello",
    "job_id": "7",
    "return_code": "0",
    "event_type": "START",
    "transport_type": "http",
    "worker_name": "w1",
    "status": "open",
}
_KIND = {"counter": "c", "gauge": "g", "timer": "ms"}


@cache
def airflow_registry() -> list[dict]:
    """Airflow's own metrics registry (the YAML its docs are generated from)."""
    from airflow._shared.observability.metrics import metrics_registry

    return metrics_registry.read_metrics_yaml(str(metrics_registry.YAML_REGISTRY_PATH))


def registry_statsd_names() -> dict[str, str]:
    """Every StatsD name the registry describes (plain and legacy), with its type."""
    out: dict[str, str] = {}
    for metric in airflow_registry():
        kind = _KIND[metric["type"]]
        for name in (metric["name"], metric.get("legacy_name", "-")):
            if name and name != "-":
                out[f"{PREFIX}." + name.format(**SAMPLES)] = kind
    return out


def platform_statsd_names() -> dict[str, str]:
    """The StatsD names the platform's own code sends through Airflow's Stats: the canary
    report's, read from the module that sends them (a real run: test_local_run.py)."""
    from airflow_platform.operators.canary import STATSD_METRICS

    return {f"{PREFIX}.{name}": kind for name, kind in STATSD_METRICS.items()}


def emitted_statsd_names() -> dict[str, str]:
    """Everything that can reach the statsd_exporter: Airflow's registry and the platform's."""
    return {**registry_statsd_names(), **platform_statsd_names()}


def produced_series(mapper: Mapper, names: dict[str, str]) -> dict[str, set[tuple[str, ...]]]:
    """Prometheus name -> the label-name sets it gets (timers become histograms)."""
    out: dict[str, set[tuple[str, ...]]] = {}
    for name, kind in names.items():
        mapped = mapper.map(name)
        if mapped is None:
            continue
        label_names = tuple(k for k, _ in mapped.labels)
        suffixes = ("_bucket", "_sum", "_count") if kind in ("ms", "h") else ("",)
        for suffix in suffixes:
            out.setdefault(mapped.name + suffix, set()).add(label_names)
    return out


def promql_metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\b((?:airflow|dagsync)_[a-zA-Z0-9_]+)\b", expr))


def alert_exprs() -> dict[str, str]:
    doc = yaml.safe_load(RULES.read_text())
    return {r["alert"]: r["expr"] for g in doc["spec"]["groups"] for r in g["rules"]}


def panel_exprs() -> dict[str, list[str]]:
    doc = json.loads(DASHBOARD.read_text())
    return {p["title"]: [t["expr"] for t in p.get("targets", [])] for p in doc["panels"]}


def names_needed_by_alerts_and_panels(airflow_only: bool = False) -> set[str]:
    exprs = list(alert_exprs().values()) + [e for es in panel_exprs().values() for e in es]
    names = set().union(*(promql_metric_names(e) for e in exprs))
    return {n for n in names if n.startswith("airflow_")} if airflow_only else names
