"""NetworkPolicies on by default: each pod may reach only what it needs, at the addresses
the values name, and is reachable only by what needs it. The chart README's table says the
same per pod; a test here reads that table and compares it with the rendering."""

from __future__ import annotations

import re

import pytest
import yaml

from airflow_platform.merge import deep_merge

from .conftest import AIRFLOW_COMPONENTS, CHART, CI_DIR, RELEASE, HelmError

pytestmark = pytest.mark.chart

PODS = (*AIRFLOW_COMPONENTS, "execution-api", "migrations")
PRIVATE = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
DNS_PEER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
}


def values_of(file: str = "default-values.yaml") -> dict:
    """The values a rendering used: the chart's defaults under one ci/ file."""
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    return deep_merge(defaults, yaml.safe_load((CI_DIR / file).read_text()))


def policy(rendering, component: str) -> dict:
    return rendering.one("NetworkPolicy", component)["spec"]


def selects(spec: dict, component: str) -> bool:
    selector = spec["podSelector"]
    if "matchLabels" in selector:
        return selector["matchLabels"].get("app.kubernetes.io/component") == component
    wanted = {e["key"]: e["values"] for e in selector["matchExpressions"]}
    return component in wanted["app.kubernetes.io/component"] and RELEASE in wanted.get(
        "app.kubernetes.io/instance", []
    )


def policies_of(rendering, component: str) -> list[dict]:
    return [p["spec"] for p in rendering.all("NetworkPolicy") if selects(p["spec"], component)]


def ports(rule: dict) -> set[tuple[object, str]]:
    return {(p["port"], p["protocol"]) for p in rule["ports"]}


def component_of_peer(peer: dict) -> str | None:
    labels = peer.get("podSelector", {}).get("matchLabels", {})
    if "namespaceSelector" in peer:
        return None
    return labels.get("app.kubernetes.io/component")


def ip_blocks(rule: dict) -> list[dict]:
    return [peer["ipBlock"] for peer in rule.get("to", []) if "ipBlock" in peer]


def describe_egress(rule: dict, values: dict) -> str:
    """The README's name of an egress rule, checked against the values it must come from."""
    np = values["networkPolicy"]
    found = ports(rule)
    if found == {(53, "UDP"), (53, "TCP")}:
        assert rule["to"] == [DNS_PEER]
        return "DNS"
    if found == {(values["database"]["port"], "TCP")}:
        assert ip_blocks(rule) == [{"cidr": c} for c in np["database"]["cidrs"]]
        return "database"
    if found == {(443, "TCP")}:
        blocks = ip_blocks(rule)
        if blocks == [{"cidr": c} for c in PRIVATE]:
            return "Kubernetes API"
        assert blocks == [{"cidr": "0.0.0.0/0", "except": PRIVATE}]
        return "HTTPS"
    if found == {(8125, "UDP")}:
        assert ip_blocks(rule) == [{"cidr": c} for c in PRIVATE]
        return "StatsD"
    if found == {(8200, "TCP")}:
        assert rule["to"] == np["vaultTo"]
        return "Vault"
    ((port, _),) = found
    targets = [component_of_peer(peer) for peer in rule["to"]]
    assert None not in targets, rule
    return ", ".join(f"{target} ({port})" for target in targets)


def describe_ingress(rule: dict, values: dict) -> str:
    np = values["networkPolicy"]
    (port, _), *_ = ports(rule)
    if port == "dagsync":
        assert rule["from"] == np["metricsIngressFrom"]
        return "monitoring (dagsync)"
    if port == "agent-metrics":
        assert rule["from"] == np["metricsIngressFrom"]
        return "monitoring (worker agent)"
    if "from" not in rule:
        assert port == "http" and np["apiServerIngressFrom"] == []
        return "load balancer (http)"
    (peer,) = rule["from"]
    labels = peer["podSelector"]["matchLabels"]
    if "app.kubernetes.io/component" not in labels:
        assert labels["app.kubernetes.io/instance"] == RELEASE
        (expression,) = peer["podSelector"]["matchExpressions"]
        assert expression["key"] == "app.kubernetes.io/component"
        assert expression["operator"] == "In"
        return ", ".join(f"{c} ({port})" for c in expression["values"])
    return f"{labels['app.kubernetes.io/component']} ({port})"


def reach(rendering, values: dict, component: str) -> tuple[list[str], list[str]]:
    egress: list[str] = []
    ingress: list[str] = []
    for spec in policies_of(rendering, component):
        for rule in spec.get("egress") or []:
            egress += describe_egress(rule, values).split(", ")
        for rule in spec.get("ingress") or []:
            ingress += describe_ingress(rule, values).split(", ")
    return egress, ingress


def readme_table() -> dict[str, tuple[list[str], list[str]]]:
    text = (CHART / "README.md").read_text()
    section = text.split("### What each pod may reach", 1)[1]
    table = section.split("| Pod | May reach | Reached by |\n|---|---|---|\n", 1)[1]
    rows: dict[str, tuple[list[str], list[str]]] = {}
    for line in table.split("\n\n", 1)[0].splitlines():
        pod, egress, ingress = (cell.strip() for cell in line.strip("|").split("|"))

        def items(cell: str) -> list[str]:
            return [] if cell == "nothing" else [i.strip() for i in cell.split(",")]

        rows[pod] = (items(egress), items(ingress))
    return rows


def test_readme_table_is_what_the_chart_renders(render) -> None:
    """Defaults plus Vault (the Vault row entry) and PgBouncer (its own pod's row)."""
    vault = render(files=("vault-values.yaml",))
    vault_values = values_of("vault-values.yaml")
    pgbouncer = render(files=("pgbouncer-values.yaml",))
    table = readme_table()
    assert set(table) == {*PODS, "pgbouncer", "helm-test"}
    for pod in (*PODS, "helm-test"):
        egress, ingress = reach(vault, vault_values, pod)
        assert (sorted(egress), sorted(ingress)) == tuple(sorted(c) for c in table[pod]), pod
    egress, ingress = reach(pgbouncer, values_of("pgbouncer-values.yaml"), "pgbouncer")
    assert (sorted(egress), sorted(ingress)) == tuple(sorted(c) for c in table["pgbouncer"])


def test_readme_table_check_can_fail(render) -> None:
    smtp = {
        "ports": [{"port": 25, "protocol": "TCP"}],
        "to": [{"ipBlock": {"cidr": "10.9.0.0/16"}}],
    }
    rendering = render({"networkPolicy": {"extraEgress": [smtp]}})
    with pytest.raises(AssertionError):
        reach(rendering, values_of(), "worker")


@pytest.mark.parametrize("component", PODS)
def test_every_pod_is_selected_and_limited_both_ways(default, component) -> None:
    spec = policy(default, component)
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == component
    for rule in spec["egress"]:
        assert rule.get("to"), f"{component}: egress on {rule['ports']} to any address"


def test_database_is_required_with_policies_on(render) -> None:
    with pytest.raises(HelmError) as refused:
        render({"networkPolicy": {"database": {"cidrs": []}}})
    assert "networkPolicy.database.cidrs is required" in refused.value.stderr


def test_vault_address_is_required_with_vault(render) -> None:
    with pytest.raises(HelmError) as refused:
        render({"networkPolicy": {"vaultTo": []}}, files=("vault-values.yaml",))
    assert "networkPolicy.vaultTo is required" in refused.value.stderr


def test_execution_api_is_reached_by_workers_only(default) -> None:
    (rule,) = policy(default, "execution-api")["ingress"]
    assert [component_of_peer(p) for p in rule["from"]] == ["worker"]
    for component in ("scheduler", "dag-processor", "triggerer", "api-server", "migrations"):
        targets = {
            component_of_peer(peer)
            for r in policy(default, component)["egress"]
            for peer in r.get("to", [])
        }
        assert "execution-api" not in targets, component


def test_api_server_peers_keep_helm_test_and_nothing_else(render) -> None:
    private = policy(render(files=("private-only-values.yaml",)), "api-server")["ingress"]
    sources = [r["from"] for r in private if r["ports"][0]["port"] == "http"]
    assert [{"ipBlock": {"cidr": "10.0.0.0/16"}}] in sources
    others = [s for s in sources if s != [{"ipBlock": {"cidr": "10.0.0.0/16"}}]]
    assert [component_of_peer(p) for s in others for p in s] == ["helm-test"]


def test_https_cidrs_and_exceptions_come_from_values(eks) -> None:
    rules = [r for r in policy(eks, "scheduler")["egress"] if ports(r) == {(443, "TCP")}]
    assert ip_blocks(rules[0]) == [
        {"cidr": "0.0.0.0/0", "except": PRIVATE},
        {"cidr": "10.20.64.0/24"},
    ]


def test_statsd_goes_to_the_configured_exporter(eks) -> None:
    rule = next(r for r in policy(eks, "worker")["egress"] if ports(r) == {(8125, "UDP")})
    assert rule["to"] == [{"ipBlock": {"cidr": "10.20.0.0/16"}}]


def test_pgbouncer_sits_between_airflow_and_the_database(render) -> None:
    rendering = render(files=("pgbouncer-values.yaml",))
    worker_ports = {p for r in policy(rendering, "worker")["egress"] for p in ports(r)}
    assert (6432, "TCP") in worker_ports and (5432, "TCP") not in worker_ports
    assert (5432, "TCP") in {p for r in policy(rendering, "migrations")["egress"] for p in ports(r)}
    assert (5432, "TCP") in {p for r in policy(rendering, "pgbouncer")["egress"] for p in ports(r)}
    assert rendering.one("Deployment", "pgbouncer")["spec"]["replicas"] == 2


def test_policies_can_be_turned_off(render) -> None:
    rendering = render({"networkPolicy": {"enabled": False, "database": {"cidrs": []}}})
    assert rendering.all("NetworkPolicy") == []


def test_readme_states_the_rule_names(default) -> None:
    text = (CHART / "README.md").read_text()
    for name in ("DNS", "database", "HTTPS", "StatsD", "Vault", "Kubernetes API"):
        assert re.search(rf"^- \*\*{re.escape(name)}\*\*", text, re.MULTILINE), name
