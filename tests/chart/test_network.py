"""NetworkPolicies on by default: each pod may reach DNS, the database, AWS over HTTPS and the
API server, and is reachable only where something needs it."""

from __future__ import annotations

import pytest

from .conftest import AIRFLOW_COMPONENTS

pytestmark = pytest.mark.chart


def policy(rendering, component: str) -> dict:
    return rendering.one("NetworkPolicy", component)["spec"]


def egress_ports(spec: dict) -> set[tuple[object, str]]:
    return {(p["port"], p["protocol"]) for rule in spec["egress"] for p in rule["ports"]}


@pytest.mark.parametrize("component", [*AIRFLOW_COMPONENTS, "migrations"])
def test_every_pod_is_selected_and_limited_both_ways(default, component) -> None:
    spec = policy(default, component)
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    labels = spec["podSelector"]["matchLabels"]
    assert labels["app.kubernetes.io/component"] == component
    ports = egress_ports(spec)
    assert {(53, "UDP"), (53, "TCP"), (5432, "TCP"), (443, "TCP")} <= ports
    for rule in spec["egress"]:
        if (443, "TCP") in {(p["port"], p["protocol"]) for p in rule["ports"]}:
            assert rule["to"] == [{"ipBlock": {"cidr": "0.0.0.0/0"}}]


@pytest.mark.parametrize("component", ["scheduler", "dag-processor", "triggerer", "worker"])
def test_components_reach_the_execution_api(default, component) -> None:
    rule = next(r for r in policy(default, component)["egress"] if r["ports"][0]["port"] == "http")
    assert (
        rule["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "api-server"
    )


def test_api_server_ingress_is_its_port_only(default, render) -> None:
    rules = policy(default, "api-server")["ingress"]
    assert rules[0] == {"ports": [{"port": "http", "protocol": "TCP"}]}
    private = policy(render(files=("private-only-values.yaml",)), "api-server")["ingress"]
    sources = [r.get("from") for r in private if r["ports"][0]["port"] == "http"]
    assert [{"ipBlock": {"cidr": "10.0.0.0/16"}}] in sources
    # The release's own pods (execution API, helm test) stay allowed.
    assert any(
        s
        and s[0].get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/instance")
        == "airflow"
        for s in sources
    )


def test_only_the_api_server_reads_worker_logs(default) -> None:
    rules = policy(default, "worker")["ingress"]
    logs = next(r for r in rules if r["ports"][0]["port"] == "logs")
    assert (
        logs["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "api-server"
    )


def test_database_cidrs_narrow_the_database_rule(eks) -> None:
    spec = policy(eks, "scheduler")
    rule = next(r for r in spec["egress"] if r["ports"][0]["port"] == 5432)
    assert rule["to"] == [
        {"ipBlock": {"cidr": "10.20.16.0/20"}},
        {"ipBlock": {"cidr": "10.20.32.0/20"}},
    ]


def test_pgbouncer_sits_between_airflow_and_the_database(render) -> None:
    rendering = render(files=("pgbouncer-values.yaml",))
    worker_ports = egress_ports(policy(rendering, "worker"))
    assert (6432, "TCP") in worker_ports and (5432, "TCP") not in worker_ports
    assert (5432, "TCP") in egress_ports(policy(rendering, "migrations"))
    assert (5432, "TCP") in egress_ports(policy(rendering, "pgbouncer"))
    assert rendering.one("Deployment", "pgbouncer")["spec"]["replicas"] == 2


def test_vault_port_is_opened_for_vault(render) -> None:
    rendering = render(files=("vault-values.yaml",))
    vault = rendering.one("NetworkPolicy", "vault-egress")["spec"]
    assert vault["egress"] == [{"ports": [{"port": 8200, "protocol": "TCP"}]}]


def test_policies_can_be_turned_off(render) -> None:
    assert render({"networkPolicy": {"enabled": False}}).all("NetworkPolicy") == []
