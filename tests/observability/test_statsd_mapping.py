"""The statsd_exporter mapping against Airflow 3.3.2's own metrics registry and the StatsD
names the platform's canary sends."""

from __future__ import annotations

import pytest
import yaml

from .metric_names import (
    MAPPING,
    emitted_statsd_names,
    names_needed_by_alerts_and_panels,
    platform_statsd_names,
    produced_series,
)
from .statsd_mapping import Mapper


@pytest.fixture(scope="module")
def mapper() -> Mapper:
    return Mapper.from_file(MAPPING)


def test_the_mapper_follows_the_exporter_glob_rules() -> None:
    m = Mapper(
        {
            "mappings": [
                {"match": "a.*.c", "name": "first_${1}", "labels": {"x": "$1"}},
                {"match": "a.b.*", "name": "second"},
                {"match": "a.drop.*", "action": "drop", "name": "dropped"},
            ]
        }
    )
    assert m.map("a.b.c").name == "first_b"  # both match: the first one in the file wins
    assert m.map("a.b.c").labels == (("x", "b"),)
    assert m.map("a.b.d").name == "second"
    assert m.map("a.b.c.d").name == "a_b_c_d"  # `*` never spans a dot: default naming
    assert m.map("a.drop.me") is None
    assert m.map("9lives-x").name == "_9lives_x"


def test_every_mapping_rule_matches_a_metric_airflow_or_the_platform_emits(mapper: Mapper) -> None:
    names = emitted_statsd_names()
    dead = [r.pattern.pattern for r in mapper.rules if not any(r.pattern.match(n) for n in names)]
    assert not dead, f"mapping rules that match no metric Airflow or the canary sends: {dead}"


def test_no_prometheus_name_gets_two_label_sets(mapper: Mapper) -> None:
    series = produced_series(mapper, emitted_statsd_names())
    clashes = {name: sets for name, sets in series.items() if len(sets) > 1}
    assert not clashes, f"statsd_exporter would refuse these: {clashes}"


def test_every_airflow_series_an_alert_or_panel_uses_comes_from_an_emitted_metric(
    mapper: Mapper,
) -> None:
    produced = set(produced_series(mapper, emitted_statsd_names()))
    needed = names_needed_by_alerts_and_panels(airflow_only=True)
    assert needed, "no airflow_* series found in the alerts and panels"
    assert not needed - produced, f"not produced by any emitted metric: {needed - produced}"


def test_the_canary_metrics_become_the_series_the_alerts_use(mapper: Mapper) -> None:
    assert set(platform_statsd_names()) == {
        "airflow.environment_healthy",
        "airflow.canary.schedule_to_finish",
    }
    series = produced_series(mapper, platform_statsd_names())
    assert series == {
        "airflow_environment_healthy": {()},
        "airflow_canary_schedule_to_finish_seconds_bucket": {()},
        "airflow_canary_schedule_to_finish_seconds_sum": {()},
        "airflow_canary_schedule_to_finish_seconds_count": {()},
    }


def test_the_canary_gauge_expires_after_three_runs_of_the_default_schedule() -> None:
    """The exporter forgets the gauge 15 minutes after a result, so a stopped canary is a
    missing series and missing data, which AirflowCanaryMissing and the alarm watch."""
    from airflow_platform.operators.canary import DEFAULT_SCHEDULE

    mappings = yaml.safe_load(MAPPING.read_text())["mappings"]
    (gauge,) = [m for m in mappings if m["match"] == "airflow.environment_healthy"]
    assert DEFAULT_SCHEDULE == "*/5 * * * *"
    assert gauge["ttl"] == "15m"


def test_labelled_series_keep_what_operators_filter_on(mapper: Mapper) -> None:
    finish = mapper.map("airflow.ti.finish.example_hello.world.failed")
    assert finish is not None and finish.name == "airflow_ti_finish"
    assert dict(finish.labels) == {"dag_id": "example_hello", "task_id": "world", "state": "failed"}
    pool = mapper.map("airflow.pool.open_slots.default_pool")
    assert pool is not None and dict(pool.labels) == {"pool": "default_pool"}
    assert mapper.map("airflow.executor.queued_tasks.CeleryExecutor") is None
    assert mapper.map("airflow.executor.queued_tasks").name == "airflow_executor_queued_tasks"


# Added to dagsync's metrics with the bucket-refusal gauge; the alert is defined ahead of it.
PENDING_DAGSYNC_METRICS = {"dagsync_refused"}


def test_every_dagsync_series_an_alert_or_panel_uses_is_exported_by_dagsync() -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from airflow_platform.dagsync.telemetry import Metrics

    metrics = Metrics()
    metrics.syncs.labels("initial", "success").inc()
    metrics.errors.labels("s3").inc()
    exposed = {
        sample.name
        for family in text_string_to_metric_families(metrics.render().decode())
        for sample in family.samples
    }
    needed = {n for n in names_needed_by_alerts_and_panels() if n.startswith("dagsync_")}
    assert needed - PENDING_DAGSYNC_METRICS
    missing = needed - exposed - PENDING_DAGSYNC_METRICS
    assert not missing, f"dagsync does not export: {missing}"
