"""Observability in the chart: the optional statsd_exporter, the Prometheus Operator monitors,
log levels per MWAA log type, and the platform processes' log format."""

from __future__ import annotations

import pytest
import yaml

from .conftest import AIRFLOW_COMPONENTS, CHART, HelmError, container, env_of, env_values

pytestmark = pytest.mark.chart

OBSERVABILITY = ("observability-values.yaml",)
MAPPING = CHART / "files" / "statsd-mapping.yaml"


def exporter(rendering, kind: str):
    return rendering.one(kind, "statsd-exporter")


def test_no_exporter_and_no_monitors_by_default(default) -> None:
    assert not default.all("Deployment", "statsd-exporter")
    assert not default.all("ServiceMonitor") and not default.all("PodMonitor")


def test_airflow_sends_statsd_to_the_exporter_service(render) -> None:
    r = render(files=OBSERVABILITY)
    service = exporter(r, "Service")
    host = f"{service['metadata']['name']}.airflow.svc"
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert ports["statsd"]["protocol"] == "UDP" and ports["statsd"]["port"] == 8125
    for component in AIRFLOW_COMPONENTS:
        env = env_values(container(r.one("Deployment", component), component))
        assert env["AIRFLOW__METRICS__STATSD_HOST"] == host, component
        assert env["AIRFLOW__METRICS__STATSD_PORT"] == "8125"


def test_the_exporter_loads_the_mapping_file_of_the_chart(render) -> None:
    r = render(files=OBSERVABILITY)
    config = exporter(r, "ConfigMap")
    assert yaml.safe_load(config["data"]["mapping.yaml"]) == yaml.safe_load(MAPPING.read_text())
    pod = exporter(r, "Deployment")["spec"]["template"]
    args = pod["spec"]["containers"][0]["args"]
    assert "--statsd.mapping-config=/etc/statsd-exporter/mapping.yaml" in args
    assert "--statsd.listen-tcp=" in args  # UDP only
    assert pod["metadata"]["annotations"]["airflow-platform.io/mapping-checksum"]


def test_the_exporter_runs_restricted_with_bounded_ephemeral_storage(render) -> None:
    spec = exporter(render(files=OBSERVABILITY), "Deployment")["spec"]["template"]["spec"]
    c = spec["containers"][0]
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"]
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}
    assert spec["automountServiceAccountToken"] is False
    assert c["resources"]["limits"]["ephemeral-storage"]


def test_the_exporter_admits_statsd_from_airflow_pods_and_scrapes_from_monitoring(render) -> None:
    policy = exporter(render(files=OBSERVABILITY), "NetworkPolicy")["spec"]
    by_port = {rule["ports"][0]["port"]: rule for rule in policy["ingress"]}
    statsd = by_port["statsd"]
    assert statsd["ports"][0]["protocol"] == "UDP"
    assert statsd["from"] == [
        {
            "podSelector": {
                "matchLabels": {
                    "app.kubernetes.io/instance": "airflow",
                    "app.kubernetes.io/name": "airflow-platform",
                }
            }
        }
    ]
    assert by_port["metrics"]["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    assert policy["egress"] == [] and set(policy["policyTypes"]) == {"Ingress", "Egress"}


def test_monitors_scrape_the_exporter_and_every_dagsync_sidecar(render) -> None:
    r = render(files=OBSERVABILITY)
    (sm,) = r.all("ServiceMonitor")
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert sm["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "statsd-exporter"
    assert sm["spec"]["endpoints"][0]["port"] == "metrics"
    pm = r.one("PodMonitor", "dagsync")  # the worker agents' own: test_worker_agent_metrics.py
    components = next(
        e["values"]
        for e in pm["spec"]["selector"]["matchExpressions"]
        if e["key"] == "app.kubernetes.io/component"
    )
    assert set(components) == set(AIRFLOW_COMPONENTS)
    assert pm["spec"]["podMetricsEndpoints"][0]["port"] == "dagsync"
    for component in AIRFLOW_COMPONENTS:
        ports = [p["name"] for p in container(r.one("Deployment", component), "dagsync")["ports"]]
        assert "dagsync" in ports


def test_levels_follow_each_mwaa_log_type(render) -> None:
    r = render(files=OBSERVABILITY)  # task WARNING, worker ERROR, the rest INFO
    worker = env_values(container(r.one("Deployment", "worker"), "worker"))
    assert worker["AIRFLOW__LOGGING__LOGGING_LEVEL"] == "WARNING"
    assert worker["AIRFLOW__LOGGING__CELERY_LOGGING_LEVEL"] == "ERROR"
    scheduler = env_values(container(r.one("Deployment", "scheduler"), "scheduler"))
    assert scheduler["AIRFLOW__LOGGING__LOGGING_LEVEL"] == "INFO"


def test_every_pod_names_its_log_group(render) -> None:
    r = render(files=OBSERVABILITY)
    expected = {
        "scheduler": "Scheduler",
        "triggerer": "Scheduler",
        "dag-processor": "DAGProcessing",
        "api-server": "WebServer",
        "worker": "Worker",
    }
    for component, suffix in expected.items():
        meta = r.one("Deployment", component)["spec"]["template"]["metadata"]
        group = meta["annotations"]["airflow-platform.io/cloudwatch-log-group"]
        assert group == f"airflow-analytics-{suffix}"


def test_task_logs_do_not_depend_on_the_log_shipper(render) -> None:
    """Task logs go through Airflow's remote logging straight to CloudWatch: the handler's
    configuration names the Task group and nothing of the node's shipper."""
    r = render(files=OBSERVABILITY)
    env = env_of(container(r.one("Deployment", "worker"), "worker"))
    assert env["AIRFLOW__LOGGING__REMOTE_LOGGING"]["value"] == "True"
    target = env["AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER"]["value"]
    assert target == (
        "cloudwatch://arn:aws:logs:eu-west-1:123456789012:log-group:airflow-analytics-Task"
    )
    # No logging setting points at the node or at a shipper's port (forward 24224).
    logging_env = {k: v for k, v in env.items() if k.startswith("AIRFLOW__LOGGING__")}
    assert logging_env
    for name, entry in logging_env.items():
        assert "valueFrom" not in entry, name
        assert not any(w in entry["value"].lower() for w in ("fluent", "24224", "hostip")), name


def test_platform_processes_log_json_by_default_and_text_on_request(render, default) -> None:
    env = env_values(container(default.one("Deployment", "scheduler"), "scheduler"))
    assert env["AIRFLOW_PLATFORM_LOG_FORMAT"] == "json"
    assert env["AIRFLOW_PLATFORM_ENVIRONMENT"] == "airflow"
    text = render({"logging": {"format": "text"}})
    env = env_values(container(text.one("Deployment", "scheduler"), "scheduler"))
    assert env["AIRFLOW_PLATFORM_LOG_FORMAT"] == "text"


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"logging": {"format": "xml"}}, "/logging/format"),
        ({"logging": {"task": {"enabled": True, "level": "LOUD"}}}, "/logging/task/level"),
        ({"logging": {"audit": {"enabled": True, "level": "INFO"}}}, "audit"),
        ({"metrics": {"serviceMonitor": {"interval": "often"}}}, "serviceMonitor/interval"),
        ({"metrics": {"statsdExporter": {"image": {"tag": ""}}}}, "statsdExporter/image/tag"),
    ],
)
def test_bad_observability_values_are_refused_naming_the_field(render, values, field) -> None:
    with pytest.raises(HelmError) as refused:
        render(values)
    assert field in refused.value.stderr


def test_an_explicit_statsd_host_and_the_exporter_are_refused_together(render) -> None:
    with pytest.raises(HelmError) as refused:
        render({"metrics": {"statsd": {"host": "10.0.0.5"}, "statsdExporter": {"enabled": True}}})
    assert "metrics.statsd.host" in refused.value.stderr
    assert "metrics.statsdExporter.enabled" in refused.value.stderr


def test_a_typo_in_a_monitor_is_refused_by_its_crd_schema(render) -> None:
    from .test_manifests_valid import validation_errors

    (sm,) = render(files=OBSERVABILITY).all("ServiceMonitor")
    assert validation_errors(sm) == []
    sm["spec"]["endpoints"][0]["intervall"] = sm["spec"]["endpoints"][0].pop("interval")
    assert any("intervall" in e for e in validation_errors(sm))
