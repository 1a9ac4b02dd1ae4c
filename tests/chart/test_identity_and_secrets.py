"""IRSA on one ServiceAccount per component, and no secret value in any rendered object."""

from __future__ import annotations

import re

import pytest

from .conftest import CHART, ci_files, pod_spec

pytestmark = pytest.mark.chart

COMPONENT_ACCOUNTS = (
    "scheduler",
    "dag-processor",
    "triggerer",
    "api-server",
    "worker",
    "migrations",
)
ROLE = "arn:aws:iam::123456789012:role/analytics-prod-airflow-execution"


@pytest.mark.parametrize("component", COMPONENT_ACCOUNTS)
def test_each_component_has_its_own_irsa_account(eks, component) -> None:
    account = eks.one("ServiceAccount", component)
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == ROLE
    workload_kind = "Job" if component == "migrations" else "Deployment"
    workload = eks.one(workload_kind, component)
    assert pod_spec(workload)["serviceAccountName"] == account["metadata"]["name"]


def test_component_role_override(render) -> None:
    own = "arn:aws:iam::123456789012:role/airflow-workers"
    rendering = render({"executionRoleArn": ROLE, "workers": {"serviceAccount": {"roleArn": own}}})

    def role(component: str) -> str:
        annotations = rendering.one("ServiceAccount", component)["metadata"]["annotations"]
        return annotations["eks.amazonaws.com/role-arn"]

    assert role("worker") == own
    assert role("scheduler") == ROLE


def test_no_role_annotation_without_a_role(default) -> None:
    for account in default.all("ServiceAccount"):
        assert "eks.amazonaws.com/role-arn" not in account["metadata"].get("annotations", {})


SENTINELS = {
    "database": "sentinel-db-secret",
    "kedaDatabase": "sentinel-keda-secret",
    "keys": "sentinel-key-secret",
}


def _sentinel_values(values_file: str) -> dict:
    values = {
        "database": {"existingSecret": SENTINELS["database"], "secretKey": "sentinel-conn"},
        "kedaDatabase": {"existingSecret": SENTINELS["kedaDatabase"], "secretKey": "sentinel-conn"},
        "secrets": {
            name: {"secretName": SENTINELS["keys"], "key": f"sentinel-{name}"}
            for name in ("fernetKey", "apiSecretKey", "jwtSecret")
        },
    }
    if "jwtSigning" in (CHART / "ci" / values_file).read_text():
        # The private key is a file from a Secret volume, in place of the JWT secret.
        values["secrets"]["jwtSecret"] = {"secretName": ""}
        values["secrets"]["jwtSigning"] = {
            "privateKey": {"secretName": SENTINELS["keys"], "key": "sentinel-private-key"}
        }
    return values


def _is_reference(path: tuple) -> bool:
    """A Secret named by an env reference or by a secret volume (its name or an item's key)."""
    parent = path[-2]
    return (
        parent in ("secretKeyRef", "secretTargetRef")
        or (isinstance(parent, int) and path[-3] == "secretTargetRef")
        or (parent == "secret" and path[-1] == "secretName")
        or (isinstance(parent, int) and path[-3] == "items" and path[-4] == "secret")
    )


def _walk(node, path=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, (*path, i))
    else:
        yield path, node


@pytest.mark.parametrize("values_file", ci_files())
def test_secret_references_only_ever_appear_as_references(render, values_file) -> None:
    rendering = render(_sentinel_values(values_file), files=(values_file,))
    assert rendering.all("Secret") == [], "the chart never renders a Secret"
    seen = 0
    for obj in rendering.objects:
        for path, value in _walk(obj):
            if isinstance(value, str) and "sentinel" in value:
                seen += 1
                assert _is_reference(path), (obj["kind"], path)
    assert seen > 0


LEAKS = {
    "credentials in a URL": re.compile(r"[a-z0-9+]+://[^/\s:@\"]+:[^@\s\"]+@"),
    "AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "inline sensitive env value": re.compile(
        r"name: AIRFLOW__(DATABASE__SQL_ALCHEMY_CONN|CORE__FERNET_KEY|API__SECRET_KEY"
        r"|API_AUTH__JWT_SECRET)\n\s+value:"
    ),
}


@pytest.mark.parametrize("values_file", ci_files())
def test_no_credentials_in_any_rendered_text(render, values_file) -> None:
    text = render(files=(values_file,)).text
    found = {what: pattern.findall(text) for what, pattern in LEAKS.items()}
    assert {k: v for k, v in found.items() if v} == {}


def test_leak_patterns_can_fail() -> None:
    sample = (
        "url: postgresql://airflow:hunter2@db:5432/airflow\nkey: AKIAABCDEFGHIJKLMNOP\n"
        "- name: AIRFLOW__CORE__FERNET_KEY\n  value: abc\n-----BEGIN RSA PRIVATE KEY-----"
    )
    assert all(pattern.search(sample) for pattern in LEAKS.values())
