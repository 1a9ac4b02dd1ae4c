"""MWAA's topology: schedulers, dag-processors, triggerers and API servers, their counts,
spread, disruption budgets, probes and the web endpoint."""

from __future__ import annotations

import json

import pytest

from .conftest import container, pod_spec

pytestmark = pytest.mark.chart

ZONE, HOST = "topology.kubernetes.io/zone", "kubernetes.io/hostname"


def test_two_schedulers_by_default(default) -> None:
    assert default.one("Deployment", "scheduler")["spec"]["replicas"] == 2


@pytest.mark.parametrize("count", [2, 3, 5])
def test_scheduler_count_follows_values(render, count) -> None:
    assert (
        render({"scheduler": {"replicas": count}}).one("Deployment", "scheduler")["spec"][
            "replicas"
        ]
        == count
    )


def test_schedulers_spread_over_zones_and_hosts(default) -> None:
    scheduler = default.one("Deployment", "scheduler")
    constraints = pod_spec(scheduler)["topologySpreadConstraints"]
    assert [c["topologyKey"] for c in constraints] == [ZONE, HOST]
    selector = scheduler["spec"]["selector"]["matchLabels"]
    for c in constraints:
        assert c["maxSkew"] == 1
        assert c["labelSelector"]["matchLabels"] == selector


def test_strict_spread_is_available(eks) -> None:
    constraints = pod_spec(eks.one("Deployment", "scheduler"))["topologySpreadConstraints"]
    assert {c["whenUnsatisfiable"] for c in constraints} == {"DoNotSchedule"}


def test_scheduler_disruption_budget_keeps_all_but_one(default) -> None:
    pdb = default.one("PodDisruptionBudget", "scheduler")
    assert pdb["spec"]["maxUnavailable"] == 1
    selector = default.one("Deployment", "scheduler")["spec"]["selector"]["matchLabels"]
    assert pdb["spec"]["selector"]["matchLabels"] == selector


def test_scheduler_liveness_checks_its_own_job_not_any_scheduler(default) -> None:
    scheduler = container(default.one("Deployment", "scheduler"), "scheduler")
    probe = scheduler["livenessProbe"]["httpGet"]
    # Airflow's scheduler health server answers for the job of this pod's hostname only.
    assert probe == {"path": "/health", "port": "health"}
    assert {"name": "health", "containerPort": 8974} in scheduler["ports"]
    env = {e["name"]: e.get("value") for e in scheduler["env"]}
    assert env["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "True"
    assert env["AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT"] == "8974"
    assert "startupProbe" in scheduler


@pytest.mark.parametrize(
    ("component", "job_type"),
    [("dag-processor", "DagProcessorJob"), ("triggerer", "TriggererJob")],
)
def test_job_liveness_is_local_to_the_pod(default, component, job_type) -> None:
    c = container(default.one("Deployment", component), component)
    assert c["livenessProbe"]["exec"]["command"] == [
        "airflow",
        "jobs",
        "check",
        "--job-type",
        job_type,
        "--local",
    ]


@pytest.mark.parametrize("component", ["dag-processor", "triggerer"])
def test_dag_processors_and_triggerers_follow_the_schedulers(render, component) -> None:
    assert (
        render({"scheduler": {"replicas": 4}}).one("Deployment", component)["spec"]["replicas"] == 4
    )
    key = {"dag-processor": "dagProcessor", "triggerer": "triggerer"}[component]
    own = render({"scheduler": {"replicas": 4}, key: {"replicas": 2}})
    assert own.one("Deployment", component)["spec"]["replicas"] == 2


def test_api_server_scales_on_cpu_between_two_and_five(default) -> None:
    hpa = default.one("HorizontalPodAutoscaler", "api-server")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)
    assert hpa["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 70},
            },
        }
    ]
    deployment = default.one("Deployment", "api-server")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    assert default.one("PodDisruptionBudget", "api-server")["spec"]["maxUnavailable"] == 1


def test_api_server_probes_use_the_health_endpoint(default) -> None:
    api = container(default.one("Deployment", "api-server"), "api-server")
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert api[probe]["httpGet"] == {"path": "/api/v2/monitor/health", "port": "http"}
    service = default.one("Service", "api-server")
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert (
        service["spec"]["selector"]
        == default.one("Deployment", "api-server")["spec"]["selector"]["matchLabels"]
    )


def _alb(rendering) -> dict[str, str]:
    return rendering.one("Ingress", "api-server")["metadata"]["annotations"]


@pytest.mark.parametrize(
    ("mode", "scheme"), [("PUBLIC_ONLY", "internet-facing"), ("PRIVATE_ONLY", "internal")]
)
def test_ingress_scheme_follows_the_access_mode(render, mode, scheme) -> None:
    cert = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d"
    rendering = render({"ingress": {"accessMode": mode, "certificateArn": cert}})
    assert _alb(rendering)["alb.ingress.kubernetes.io/scheme"] == scheme
    assert rendering.one("Ingress", "api-server")["spec"]["ingressClassName"] == "alb"


def test_private_only_example_is_internal(render) -> None:
    assert (
        _alb(render(files=("private-only-values.yaml",)))["alb.ingress.kubernetes.io/scheme"]
        == "internal"
    )


def test_certificate_turns_on_https_and_redirect(eks, default) -> None:
    alb = _alb(eks)
    assert alb["alb.ingress.kubernetes.io/certificate-arn"].startswith("arn:aws:acm:eu-west-1:")
    assert json.loads(alb["alb.ingress.kubernetes.io/listen-ports"]) == [
        {"HTTP": 80},
        {"HTTPS": 443},
    ]
    assert alb["alb.ingress.kubernetes.io/ssl-redirect"] == "443"
    plain = _alb(default)
    assert "alb.ingress.kubernetes.io/certificate-arn" not in plain
    assert json.loads(plain["alb.ingress.kubernetes.io/listen-ports"]) == [{"HTTP": 80}]


def test_alb_health_check_and_targets(eks) -> None:
    alb = _alb(eks)
    assert alb["alb.ingress.kubernetes.io/healthcheck-path"] == "/api/v2/monitor/health"
    assert alb["alb.ingress.kubernetes.io/target-type"] == "ip"
    assert alb["alb.ingress.kubernetes.io/inbound-cidrs"] == "203.0.113.0/24"
    assert set(alb["alb.ingress.kubernetes.io/tags"].split(",")) == {
        "team=analytics",
        "cost-center=4711",
    }
    rule = eks.one("Ingress", "api-server")["spec"]["rules"][0]
    assert rule["host"] == "airflow.analytics.example.com"
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "airflow-airflow-platform-api-server", "port": {"name": "http"}}


def test_ingress_can_be_left_out(render) -> None:
    assert render({"ingress": {"enabled": False}}).all("Ingress") == []


def test_helm_test_asks_the_api_server_service_for_its_health(default) -> None:
    pod = default.one("Pod", "helm-test")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = " ".join(pod["spec"]["containers"][0]["command"])
    service = default.one("Service", "api-server")["metadata"]["name"]
    assert f"http://{service}.airflow.svc.cluster.local:8080/api/v2/monitor/health" in script
