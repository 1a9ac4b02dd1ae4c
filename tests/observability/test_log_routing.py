"""Each component's container output reaches its MWAA log group through the node's Fluent
Bit (manifests/logging/fluent-bit.yaml), read from the annotations the chart renders."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from chart.conftest import AIRFLOW_COMPONENTS

from .fluent_bit_routing import Routing, access, render_template

pytestmark = pytest.mark.chart

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "manifests" / "logging" / "fluent-bit.yaml"
GROUP = {
    "scheduler": "Scheduler",
    "triggerer": "Scheduler",
    "dag-processor": "DAGProcessing",
    "api-server": "WebServer",
    "worker": "Worker",
}


@pytest.fixture(scope="module")
def routing() -> Routing:
    return Routing.from_file(CONFIG)


def records_of(deployment: dict, log: str = "line") -> list[dict]:
    """The records the kubernetes filter makes of each container's output of a pod."""
    template = deployment["spec"]["template"]
    spec = template["spec"]
    return [
        {
            "tag": f"airflow.var.log.containers.pod_airflow_{c['name']}-0.log",
            "log": log,
            "kubernetes": {
                "pod_name": f"{deployment['metadata']['name']}-abc12",
                "namespace_name": "airflow",
                "container_name": c["name"],
                "labels": template["metadata"]["labels"],
                "annotations": template["metadata"].get("annotations", {}),
            },
        }
        for c in spec.get("initContainers", []) + spec["containers"]
    ]


def test_the_configuration_is_the_yaml_format_fluent_bit_reads() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    assert set(config) == {"service", "pipeline"}
    assert {i["name"] for i in config["pipeline"]["inputs"]} == {"tail"}
    kube = next(f for f in config["pipeline"]["filters"] if f["name"] == "kubernetes")
    assert kube["annotations"] is True and kube["labels"] is True
    out = config["pipeline"]["outputs"][0]
    # Groups exist beforehand with retention and KMS; the shipper never creates one.
    assert out["auto_create_group"] is False


def test_every_container_of_every_component_goes_to_its_mwaa_group(render, routing) -> None:
    rendering = render(files=("observability-values.yaml",))
    for component in AIRFLOW_COMPONENTS:
        for record in records_of(rendering.one("Deployment", component)):
            route = routing.route(record)
            assert route is not None, (component, record["kubernetes"]["container_name"])
            assert route.group == f"airflow-analytics-{GROUP[component]}"
            pod = record["kubernetes"]["pod_name"]
            assert route.stream == f"{pod}.{record['kubernetes']['container_name']}"


def test_a_disabled_log_type_is_not_shipped(render, routing) -> None:
    rendering = render(
        {"logging": {"webServer": {"enabled": False, "level": "INFO"}}},
        files=("observability-values.yaml",),
    )
    for record in records_of(rendering.one("Deployment", "api-server")):
        assert routing.route(record) is None
    assert all(routing.route(r) for r in records_of(rendering.one("Deployment", "scheduler")))


def test_pods_the_chart_did_not_route_are_dropped(routing) -> None:
    other = {"kubernetes": {"pod_name": "x", "container_name": "y", "annotations": {}}}
    assert routing.route(other) is None
    task_group = {
        "kubernetes": {
            "pod_name": "x",
            "container_name": "y",
            "annotations": {"airflow-platform.io/cloudwatch-log-group": "airflow-analytics-Task"},
        }
    }
    assert routing.route(task_group) is None  # Airflow's remote logging owns the Task group


def test_record_accessors_resolve_like_fluent_bit() -> None:
    record = {"kubernetes": {"annotations": {"a/b": "G"}, "pod_name": "p"}}
    assert access(record, "$kubernetes['annotations']['a/b']") == "G"
    assert access(record, "$kubernetes['labels']['x']") is None
    assert render_template(record, "$kubernetes['pod_name'].x") == "p.x"
    assert render_template(record, "$kubernetes['container_name']") is None
