"""Hostile airflowConfigurationOptions, on every way in: chart values, `env validate` (and
`env render`) of an environment spec, and `env import` of an MWAA get-environment JSON.

The chart and the spec refuse the option, naming it and the fix, and write nothing;
`env import` drops it, says why, and keeps the rest of the environment.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from .chart_render import helm_template

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "environments"

# (id, key, value, a fragment of the fix every surface gives)
OPTIONS: list[tuple[str, str, str, str]] = [
    ("all-admins", "core.simple_auth_manager_all_admins", "True", "auth.simpleAuthManagerUsers"),
    ("auth-manager", "core.auth_manager", "my_plugins.OpenDoorAuthManager", "set auth.manager"),
    ("fab-config-file", "fab.config_file", "/opt/airflow/dags/webserver_config.py", "FAB"),
    ("jwt-settings", "api_auth.jwt_expiration_time", "31536000", "set secrets.jwtSecret"),
    ("command", "database.sql_alchemy_conn_cmd", "cat /tmp/db", "airflowConfigurationSecrets"),
    ("secret-lookup", "smtp.smtp_password_secret", "smtp/pw", "airflowConfigurationSecrets"),
    ("plain-password", "smtp.smtp_password", "hunter2", "airflowConfigurationSecrets"),
    (
        "url-with-password",
        "openlineage.transport",
        '{"type": "http", "url": "https://lineage:hunter2@lineage.example"}',
        "airflowConfigurationSecrets",
    ),
    ("secrets-backend", "secrets.backend", "my_plugins.LeakyBackend", "set secretsBackend"),
    ("expose-config", "api.expose_config", "True", "stays hidden"),
    ("log-folder", "logging.base_log_folder", "/tmp/elsewhere", "logs volume"),
    ("unmask", "core.hide_sensitive_var_conn_fields", "False", "masking"),
]
IDS = [case[0] for case in OPTIONS]
CASES = [c[1:] for c in OPTIONS]


def _cli(*args: str):
    from airflow_platform.cli import app

    return CliRunner().invoke(app, list(args))


@pytest.mark.chart
@pytest.mark.parametrize(("key", "value", "fix"), CASES, ids=[f"chart-{i}" for i in IDS])
def test_chart_refuses_the_option(helm_bin: str, key: str, value: str, fix: str) -> None:
    run = helm_template(helm_bin, {"airflowConfigurationOptions": {key: value}})
    assert run.refused and run.stdout == ""
    assert f'airflowConfigurationOptions["{key}"]' in run.stderr, run.stderr
    assert fix in run.stderr and "remove it" in run.stderr, run.stderr
    assert value not in run.stdout


@pytest.mark.parametrize(("key", "value", "fix"), CASES, ids=[f"validate-{i}" for i in IDS])
def test_env_validate_and_render_refuse_the_option(
    tmp_path: Path, key: str, value: str, fix: str
) -> None:
    spec = yaml.safe_load((EXAMPLES / "etl-small.yaml").read_text())
    spec["AirflowConfigurationOptions"][key] = value
    path = tmp_path / "env.yaml"
    path.write_text(yaml.safe_dump(spec))
    validated = _cli("env", "validate", str(path))
    assert validated.exit_code == 2, validated.output
    field = f"AirflowConfigurationOptions['{key}']"
    message = " ".join(validated.stderr.split())
    assert field in message and fix in message, message
    rendered = tmp_path / "values.yaml"
    refused = _cli("env", "render", str(path), "-o", str(rendered))
    assert refused.exit_code == 2 and field in refused.stderr
    assert not rendered.exists(), "a refused spec wrote chart values"


@pytest.mark.parametrize(("key", "value", "fix"), CASES, ids=[f"import-{i}" for i in IDS])
def test_env_import_drops_the_option_and_keeps_the_rest(
    tmp_path: Path, key: str, value: str, fix: str
) -> None:
    document = json.loads((EXAMPLES / "mwaa" / "etl-small.get-environment.json").read_text())
    options = document["Environment"]["AirflowConfigurationOptions"]
    options[key] = value
    source = tmp_path / "get-environment.json"
    source.write_text(json.dumps(document))
    out = tmp_path / "spec.yaml"
    imported = _cli("env", "import", str(source), "-o", str(out))
    assert imported.exit_code == 0, imported.output
    message = " ".join(imported.stderr.split())
    assert f"AirflowConfigurationOptions['{key}']: dropped:" in message, message
    assert fix in message, message
    kept = yaml.safe_load(out.read_text())["AirflowConfigurationOptions"]
    assert key not in kept
    assert kept["core.dagbag_import_timeout"] == "60"  # the rest of the options survive
    assert value not in out.read_text()
