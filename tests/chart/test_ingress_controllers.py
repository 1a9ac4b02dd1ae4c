"""The Ingress for any controller: the ALB mode (className alb) or another class with TLS from a
Secret; the ALB-only keys are refused outside ALB mode."""

from __future__ import annotations

import pytest

from .conftest import HelmError, env_of

pytestmark = pytest.mark.chart

NGINX = {
    "ingress": {
        "className": "nginx",
        "host": "airflow.example.com",
        "tls": {"secretName": "airflow-tls"},
    }
}


def _ingress(rendering):
    return rendering.one("Ingress", "api-server")


def test_another_controller_gets_tls_from_the_secret_and_no_alb_annotations(render) -> None:
    rendering = render(NGINX)
    ingress = _ingress(rendering)
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [
        {"secretName": "airflow-tls", "hosts": ["airflow.example.com"]}
    ]
    annotations = ingress["metadata"].get("annotations", {})
    assert not [a for a in annotations if a.startswith("alb.ingress.kubernetes.io/")]
    api = rendering.one("Deployment", "api-server")
    base_url = env_of(api["spec"]["template"]["spec"]["containers"][0])["AIRFLOW__API__BASE_URL"]
    assert base_url["value"] == "https://airflow.example.com"


def test_user_annotations_still_reach_another_controller(render) -> None:
    values = {
        "ingress": {
            **NGINX["ingress"],
            "annotations": {"nginx.ingress.kubernetes.io/proxy-body-size": "8m"},
        }
    }
    annotations = _ingress(render(values))["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "8m"


def test_without_a_secret_another_controller_serves_plain_http(render) -> None:
    ingress = _ingress(render({"ingress": {"className": "traefik"}}))
    assert "tls" not in ingress["spec"]


def test_alb_mode_is_unchanged(default) -> None:
    ingress = _ingress(default)
    assert ingress["spec"]["ingressClassName"] == "alb"
    assert "tls" not in ingress["spec"]
    assert ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/target-type"] == "ip"


@pytest.mark.parametrize(
    ("ingress", "pointer"),
    [
        (
            {
                "className": "nginx",
                "certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/abc",
            },
            "/ingress/certificateArn",
        ),
        ({"className": "nginx", "groupName": "shared"}, "/ingress/groupName"),
        ({"className": "traefik", "inboundCidrs": ["10.0.0.0/8"]}, "/ingress/inboundCidrs"),
        ({"tls": {"secretName": "airflow-tls"}}, "/ingress/tls/secretName"),
    ],
)
def test_keys_of_the_other_mode_are_refused(render, ingress, pointer) -> None:
    with pytest.raises(HelmError) as refused:
        render({"ingress": ingress})
    assert f"at '{pointer}'" in refused.value.stderr
