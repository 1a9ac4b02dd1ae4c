"""The worker agent's /metrics in the chart: the port it binds (the pod IP only), the
PodMonitor that scrapes it with metrics.serviceMonitor.enabled, the NetworkPolicy rule that
lets the monitoring namespace in, and the schema's refusals of a bad port."""

from __future__ import annotations

import pytest

from .conftest import HelmError, container, env_of, env_values

pytestmark = pytest.mark.chart

OBSERVABILITY = ("observability-values.yaml",)
MONITORING = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]


def agent_ingress(rendering) -> list[dict]:
    policy = rendering.one("NetworkPolicy", "worker")["spec"]
    return [r for r in policy["ingress"] if r["ports"][0]["port"] == "agent-metrics"]


def test_the_agent_serves_metrics_on_its_pod_ip(render) -> None:
    agent = container(render(files=OBSERVABILITY).one("Deployment", "worker"), "worker-agent")
    assert agent["ports"] == [{"name": "agent-metrics", "containerPort": 9102, "protocol": "TCP"}]
    assert env_values(agent)["WORKER_AGENT_METRICS_PORT"] == "9102"
    host = env_of(agent)["WORKER_AGENT_METRICS_HOST"]
    assert host["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}


def test_a_pod_monitor_scrapes_every_worker_agent(render) -> None:
    r = render(files=OBSERVABILITY)
    pm = r.one("PodMonitor", "worker-agent")
    assert pm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert pm["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "airflow-platform",
        "app.kubernetes.io/instance": "airflow",
        "app.kubernetes.io/component": "worker",
    }
    (endpoint,) = pm["spec"]["podMetricsEndpoints"]
    assert endpoint == {"port": "agent-metrics", "path": "/metrics", "interval": "30s"}
    (rule,) = agent_ingress(r)
    assert rule["from"] == MONITORING and rule["ports"] == [
        {"port": "agent-metrics", "protocol": "TCP"}
    ]


def test_another_port_is_used_everywhere(render) -> None:
    r = render({"workers": {"deletionCostAgent": {"metricsPort": 9300}}}, files=OBSERVABILITY)
    agent = container(r.one("Deployment", "worker"), "worker-agent")
    assert agent["ports"][0]["containerPort"] == 9300
    assert env_values(agent)["WORKER_AGENT_METRICS_PORT"] == "9300"
    assert r.one("PodMonitor", "worker-agent")["spec"]["podMetricsEndpoints"][0]["port"] == (
        "agent-metrics"
    )


def test_no_monitor_and_no_rule_without_the_agent_or_the_monitors(render, default) -> None:
    off = render({"workers": {"deletionCostAgent": {"enabled": False}}}, files=OBSERVABILITY)
    assert not off.all("PodMonitor", "worker-agent") and not agent_ingress(off)
    assert off.one("PodMonitor", "dagsync")
    assert not default.all("PodMonitor", "worker-agent")


@pytest.mark.parametrize("port", [80, 70000, "9102"])
def test_the_schema_refuses_a_bad_port(render, port) -> None:
    with pytest.raises(HelmError) as refused:
        render({"workers": {"deletionCostAgent": {"metricsPort": port}}})
    assert "metricsPort" in refused.value.stderr
