"""Every rendering of every ci/ value file is a valid Kubernetes 1.31 installation.

Built-in kinds are checked by kubernetes-validate (strict: unknown fields fail); the KEDA
custom resources by the openAPIV3Schema of their CRDs, kept in tests/chart/crds/ with their
source commit, made strict the same way (an unknown field fails).
"""

from __future__ import annotations

import copy
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from .conftest import CHART, CI_DIR, ci_files

pytestmark = pytest.mark.chart

KUBERNETES_VERSION = "1.31.0"
CRD_DIR = Path(__file__).parent / "crds"
CRD_FILES = {
    ("keda.sh/v1alpha1", "ScaledObject"): "keda.sh_scaledobjects.v1alpha1.yaml",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "keda.sh_triggerauthentications.v1alpha1.yaml",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "monitoring.coreos.com_servicemonitors.v1.yaml",
    ("monitoring.coreos.com/v1", "PodMonitor"): "monitoring.coreos.com_podmonitors.v1.yaml",
}


def _strict(schema: Any) -> Any:
    """Refuse unknown fields wherever the CRD lists its fields, as the API server's strict
    field validation does (open maps and preserve-unknown-fields subtrees stay open)."""
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@cache
def crd_validator(api_version: str, kind: str) -> jsonschema.Draft7Validator:
    data = yaml.safe_load((CRD_DIR / CRD_FILES[(api_version, kind)]).read_text())
    assert data["kind"] == kind and f"{data['group']}/{data['version']}" == api_version
    return jsonschema.Draft7Validator(_strict(data["openAPIV3Schema"]))


def validation_errors(obj: dict[str, Any]) -> list[str]:
    """What is wrong with one rendered object ([] when valid)."""
    key = (obj["apiVersion"], obj["kind"])
    if key in CRD_FILES:
        return [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in crd_validator(*key).iter_errors(obj)
        ]
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{'/'.join(map(str, error.path))}: {error.message}"]
    return []


@pytest.mark.parametrize("values_file", ci_files())
def test_every_object_is_schema_valid(render, values_file: str) -> None:
    rendering = render(files=(values_file,))
    assert rendering.objects, f"{values_file} rendered nothing"
    problems = {
        f"{o['kind']}/{o['metadata']['name']}": errors
        for o in rendering.objects
        if (errors := validation_errors(o))
    }
    assert problems == {}


@pytest.mark.parametrize("values_file", ci_files())
def test_helm_lint_strict_passes(helm_bin: str, values_file: str) -> None:
    done = subprocess.run(
        [helm_bin, "lint", "--strict", str(CHART), "-f", str(CI_DIR / values_file)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout


def test_validation_catches_a_broken_deployment(default) -> None:
    broken = copy.deepcopy(default.one("Deployment", "scheduler"))
    broken["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = 7
    broken["spec"]["replicass"] = 2
    assert validation_errors(broken)


def test_validation_catches_a_broken_scaled_object(default) -> None:
    broken = copy.deepcopy(default.one("ScaledObject", "worker"))
    broken["spec"]["minReplicaCount"] = "one"
    broken["spec"]["triggers"][0]["metadata"]["targetQueryValue"] = 1
    broken["spec"]["maxReplicas"] = 3
    errors = validation_errors(broken)
    assert len(errors) == 3, errors


def test_crd_schemas_name_their_source() -> None:
    for name in CRD_FILES.values():
        data = yaml.safe_load((CRD_DIR / name).read_text())
        assert data["source"]["repository"] in (
            "kedacore/keda",
            "prometheus-operator/prometheus-operator",
        )
        assert len(data["source"]["commit"]) == 40


def test_eks_example_is_a_complete_installation(eks) -> None:
    kinds = {
        (o["kind"], o["metadata"]["labels"]["app.kubernetes.io/component"]) for o in eks.objects
    }
    for component in ("scheduler", "dag-processor", "triggerer", "api-server", "worker"):
        assert ("Deployment", component) in kinds
        assert ("ServiceAccount", component) in kinds
        assert ("NetworkPolicy", component) in kinds
    for expected in [
        ("Job", "migrations"),
        ("Service", "api-server"),
        ("Ingress", "api-server"),
        ("HorizontalPodAutoscaler", "api-server"),
        ("PodDisruptionBudget", "scheduler"),
        ("PodDisruptionBudget", "api-server"),
        ("ScaledObject", "worker"),
        ("TriggerAuthentication", "keda-database"),
        ("TriggerAuthentication", "keda-aws"),
        ("ConfigMap", "environment"),
        ("Pod", "helm-test"),
    ]:
        assert expected in kinds
    cluster_scoped = ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")
    assert all(
        o["metadata"]["namespace"] == "airflow"
        for o in eks.objects
        if o["kind"] not in cluster_scoped
    )
