"""`env render` output fed to the real chart: helm accepts it and every setting lands."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from env_examples import SPEC_IDS, SPECS

from airflow_platform.environment.model import load_environment_file
from airflow_platform.environment.render import render_values_yaml

CHART = Path(__file__).resolve().parents[2] / "charts" / "airflow-platform"

pytestmark = [
    pytest.mark.chart,
    pytest.mark.skipif(not (CHART / "Chart.yaml").exists(), reason="chart not present"),
]


def _objects(manifest: str) -> dict[tuple[str, str], dict]:
    found: dict[tuple[str, str], dict] = {}
    for doc in yaml.safe_load_all(manifest):
        if doc:
            component = doc["metadata"].get("labels", {}).get("app.kubernetes.io/component", "")
            found[(doc["kind"], component)] = doc
    return found


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_chart_renders_the_environment(spec: Path, helm_bin: str, tmp_path: Path) -> None:
    env = load_environment_file(spec)
    values = tmp_path / "values.yaml"
    values.write_text(render_values_yaml(env))
    out = subprocess.run(
        [helm_bin, "template", env.release_name, str(CHART), "-n", env.eks.namespace,
         "-f", str(values)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, f"the chart refused the rendered values:\n{out.stderr}"
    objects = _objects(out.stdout)
    assert objects[("Deployment", "scheduler")]["spec"]["replicas"] == env.schedulers
    scaled = objects[("ScaledObject", "worker")]["spec"]
    assert (scaled["minReplicaCount"], scaled["maxReplicaCount"]) == (
        env.min_workers,
        env.max_workers,
    )
    hpa = objects[("HorizontalPodAutoscaler", "api-server")]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (env.min_webservers, env.max_webservers)
    ingress = objects[("Ingress", "api-server")]["metadata"]["annotations"]
    scheme = "internal" if env.webserver_access_mode == "PRIVATE_ONLY" else "internet-facing"
    assert ingress["alb.ingress.kubernetes.io/scheme"] == scheme
    if env.eks.ingress.certificate_arn:
        assert (
            ingress["alb.ingress.kubernetes.io/certificate-arn"] == env.eks.ingress.certificate_arn
        )
    cidrs = ",".join(env.eks.ingress.inbound_cidrs)
    assert ingress.get("alb.ingress.kubernetes.io/inbound-cidrs", "") == cidrs
    oidc = env.eks.auth.oidc
    assert oidc is not None, "every example signs in with OpenID Connect"
    webserver_config = objects[("ConfigMap", "auth")]["data"]["webserver_config.py"]
    assert f'"{oidc.issuer_url}/.well-known/openid-configuration"' in webserver_config
    mapping = next(
        line.split("=", 1)[1]
        for line in webserver_config.splitlines()
        if line.startswith("AUTH_ROLES_MAPPING =")
    )
    assert json.loads(mapping) == oidc.role_mapping
    roles = env.eks.service_account_role_arns
    for component, role in (
        ("scheduler", roles.scheduler),
        ("dag-processor", roles.dag_processor),
        ("triggerer", roles.triggerer),
        ("worker", roles.worker),
        ("api-server", roles.api_server),
    ):
        annotations = objects[("ServiceAccount", component)]["metadata"]["annotations"]
        assert annotations["eks.amazonaws.com/role-arn"] == (role or env.execution_role_arn)
    assert env.eks.celery_queue_url in out.stdout
    for key, value in env.airflow_configuration_options.items():
        assert key in out.stdout or value in out.stdout
    for key, value in env.tags.items():
        assert f"{key}: {value}" in out.stdout or f'{key}: "{value}"' in out.stdout


KEYS = [
    "core.parallelism",
    "celery.worker_autoscale",
    "a1.b",
    "core.1x",
    "secrets.backend_kwargs",
    "Core.parallelism",
    "core",
    "core.parallelism.extra",
    "core.",
    ".parallelism",
    "core-x.y",
    "1core.x",
    "core.Parallelism",
]


@pytest.mark.skipif(not (CHART / "values.schema.json").exists(), reason="chart schema not present")
def test_chart_schema_applies_the_same_config_rules() -> None:
    import json

    import jsonschema

    from airflow_platform.environment.config_rules import (
        PLATFORM_OWNED_CONFIG_KEYS,
        config_option_problems,
    )

    schema = json.loads((CHART / "values.schema.json").read_text())
    options = schema["properties"]["airflowConfigurationOptions"]
    validator = jsonschema.Draft7Validator(options)
    for key in [*KEYS, *PLATFORM_OWNED_CONFIG_KEYS]:
        python_ok = not config_option_problems(key, "x")
        schema_ok = validator.is_valid({key: "x"})
        assert python_ok == schema_ok, f"{key!r}: model says {python_ok}, schema {schema_ok}"
    assert not validator.is_valid({"core.x": "v" * 65_537})
    assert validator.is_valid({"core.x": "v" * 65_536})
