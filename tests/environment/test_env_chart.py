"""`env render` output fed to the real chart: helm accepts it and every setting lands."""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from env_examples import SPEC_IDS, SPECS

from airflow_platform.environment.classes import ENVIRONMENT_CLASSES
from airflow_platform.environment.config_rules import config_env_var
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


def _env_values(deployment: dict, name: str) -> dict[str, str]:
    """The plain `value` variables of one container of a Deployment."""
    pod = deployment["spec"]["template"]["spec"]
    [container] = [c for c in pod["containers"] if c["name"] == name]
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


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
    scheduler_env = _env_values(objects[("Deployment", "scheduler")], "scheduler")
    assert json.loads(
        scheduler_env["AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__PREDEFINED_QUEUES"]
    ) == {"default": {"url": env.eks.celery_queue_url}}
    assert scheduler_env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == str(
        ENVIRONMENT_CLASSES[env.environment_class].tasks_per_worker
    )
    database = next(
        rule["to"]
        for rule in objects[("NetworkPolicy", "scheduler")]["spec"]["egress"]
        if rule["ports"][0]["port"] == 5432
    )
    assert database == [{"ipBlock": {"cidr": c}} for c in env.eks.database_cidrs or []]
    # Every option reaches every Airflow component as its own variable, with its value.
    for component in ("scheduler", "dag-processor", "triggerer", "api-server", "worker"):
        values = _env_values(objects[("Deployment", component)], component)
        for key, value in env.airflow_configuration_options.items():
            assert values.get(config_env_var(key)) == value, (component, key)
    # MWAA Tags become annotations on every object the chart renders.
    for (kind, component), obj in objects.items():
        annotations = obj["metadata"].get("annotations") or {}
        assert {k: annotations.get(k) for k in env.tags} == env.tags, (kind, component)


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


def _helm_refuses(helm_bin: str, tmp_path: Path, values: dict) -> str:
    """helm's error message for `values` on top of the minimal install ("" = rendered)."""
    extra = tmp_path / "extra.yaml"
    extra.write_text(yaml.safe_dump(values))
    out = subprocess.run(
        [helm_bin, "template", "airflow", str(CHART),
         "-f", str(CHART / "ci" / "default-values.yaml"), "-f", str(extra)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return "" if out.returncode == 0 else out.stderr


def test_chart_reads_the_rules_the_model_applies() -> None:
    from airflow_platform.environment.config_rules import chart_rules_json

    shipped = (CHART / "files" / "config-rules.json").read_text()
    assert shipped == chart_rules_json(), (
        "charts/airflow-platform/files/config-rules.json is stale: run "
        "`python -m airflow_platform.environment.config_rules`"
    )


def test_chart_and_model_refuse_the_same_options(helm_bin: str, tmp_path: Path) -> None:
    from airflow_platform.environment.config_rules import (
        PLATFORM_OWNED_CONFIG_KEYS,
        config_option_problems,
    )

    by_rule = [
        "api_auth.jwt_expiration_time",
        "core.simple_auth_manager_all_admins",
        "fab.auth_rate_limited",
        "smtp.smtp_password_cmd",
        "database.sql_alchemy_conn_secret",
        "smtp.smtp_password",
        "sentry.sentry_dsn",
        "opensearch.api_key",
        "smtp.smtp_user",
        "ldap.bind_password_file",
        "api.ssl_cert",
    ]
    options = [(key, "x") for key in [*KEYS, *PLATFORM_OWNED_CONFIG_KEYS, *by_rule]]
    options += [("core.x", "postgresql://airflow:pw@db:5432/airflow"), ("core.y", "https://h/p")]

    def verdict(index: int) -> tuple[str, str, str]:
        key, value = options[index]
        folder = tmp_path / str(index)
        folder.mkdir()
        return (
            key,
            value,
            _helm_refuses(helm_bin, folder, {"airflowConfigurationOptions": {key: value}}),
        )

    with ThreadPoolExecutor(max_workers=3) as pool:
        verdicts = list(pool.map(verdict, range(len(options))))
    for key, value, refused in verdicts:
        python_ok = not config_option_problems(key, value)
        assert python_ok == (not refused), f"{key!r}: model ok={python_ok}, helm said {refused!r}"
        if refused:
            assert key in refused, refused  # helm names the option it refuses
    too_long = {"airflowConfigurationOptions": {"core.x": "v" * 65_537}}
    assert "maxLength" in _helm_refuses(helm_bin, tmp_path, too_long)
    assert not _helm_refuses(
        helm_bin, tmp_path, {"airflowConfigurationOptions": {"core.x": "v" * 65_536}}
    )


def test_configuration_secrets_reach_the_chart_as_secret_refs(
    helm_bin: str, tmp_path: Path
) -> None:
    from airflow_platform.environment.model import load_environment
    from airflow_platform.environment.render import render_values

    spec = yaml.safe_load((SPECS[0]).read_text())
    spec["Eks"]["ConfigurationSecrets"] = {
        "smtp.smtp_password": {"SecretName": "airflow-smtp", "Key": "password"}
    }
    values = render_values(load_environment(spec))
    assert values["airflowConfigurationSecrets"] == {
        "smtp.smtp_password": {"secretName": "airflow-smtp", "key": "password"}
    }
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    out = subprocess.run(
        [helm_bin, "template", "x", str(CHART), "-f", str(path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    scheduler = _objects(out.stdout)[("Deployment", "scheduler")]
    env = {e["name"]: e for e in scheduler["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["AIRFLOW__SMTP__SMTP_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "airflow-smtp",
        "key": "password",
    }
