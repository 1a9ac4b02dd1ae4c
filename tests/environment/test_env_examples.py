"""The example environments: they validate, render to chart values and round-trip from MWAA."""

from __future__ import annotations

import json

import pytest
import yaml
from env_examples import EXAMPLES, SPEC_IDS, SPECS, spec_data

from airflow_platform.environment.classes import ENVIRONMENT_CLASSES
from airflow_platform.environment.model import (
    dump_environment,
    load_environment,
    load_environment_file,
)
from airflow_platform.environment.mwaa_import import import_environment
from airflow_platform.environment.render import render_values, render_values_yaml


def test_examples_cover_every_class_and_both_access_modes() -> None:
    envs = [load_environment_file(path) for path in SPECS]
    assert {env.environment_class for env in envs} == set(ENVIRONMENT_CLASSES)
    assert {env.webserver_access_mode for env in envs} == {"PUBLIC_ONLY", "PRIVATE_ONLY"}
    for env in envs:
        assert env.missing_for_deploy() == [], env.name


@pytest.mark.parametrize("path", SPECS, ids=SPEC_IDS)
def test_spec_survives_dump_and_reload(path) -> None:
    env = load_environment_file(path)
    again = load_environment(yaml.safe_load(dump_environment(env)))
    assert again == env


@pytest.mark.parametrize("path", SPECS, ids=SPEC_IDS)
def test_render_maps_every_mwaa_field(path) -> None:
    data = yaml.safe_load(path.read_text())
    values = yaml.safe_load(render_values_yaml(load_environment_file(path)))
    eks = data["Eks"]
    assert values["environmentName"] == data["Name"]
    assert values["environmentClass"] == data["EnvironmentClass"]
    assert values["scheduler"]["replicas"] == data["Schedulers"]
    assert values["workers"]["minWorkers"] == data["MinWorkers"]
    assert values["workers"]["maxWorkers"] == data["MaxWorkers"]
    assert values["apiServer"]["minReplicas"] == data["MinWebservers"]
    assert values["apiServer"]["maxReplicas"] == data["MaxWebservers"]
    assert values["ingress"]["accessMode"] == data["WebserverAccessMode"]
    assert values["executionRoleArn"] == data["ExecutionRoleArn"]
    assert values["aws"]["region"] == eks["Region"]
    assert "arn:aws:s3:::" + values["dags"]["s3"]["bucket"] == data["SourceBucketArn"]
    assert values["dags"]["s3"]["dagsPrefix"] == data["DagS3Path"].rstrip("/") + "/"
    assert values["dags"]["s3"]["pluginsKey"] == data.get("PluginsS3Path", "")
    assert values["dags"]["s3"]["requirementsVersion"] == data.get(
        "RequirementsS3ObjectVersion", ""
    )
    assert values["dags"]["s3"]["startupScriptKey"] == data.get("StartupScriptS3Path", "")
    assert values["celery"]["sqsQueueUrl"] == eks["CeleryQueueUrl"]
    assert values["database"]["existingSecret"] == eks["DatabaseSecret"]["SecretName"]
    assert values["secrets"]["jwtSecret"]["secretName"] == eks["Secrets"]["JwtSecret"]["SecretName"]
    assert values["weeklyMaintenanceWindowStart"] == data["WeeklyMaintenanceWindowStart"]
    assert values["kmsKey"] == data.get("KmsKey", "")
    assert values["tags"] == {k: str(v) for k, v in (data.get("Tags") or {}).items()}
    options = {k: str(v) for k, v in (data.get("AirflowConfigurationOptions") or {}).items()}
    assert values["airflowConfigurationOptions"] == options
    logs = data.get("LoggingConfiguration") or {}
    task = logs.get("TaskLogs", {"Enabled": False, "LogLevel": "INFO"})
    assert values["logging"]["task"] == {"enabled": task["Enabled"], "level": task["LogLevel"]}
    assert values["logging"]["cloudwatch"]["enabled"] == any(
        m.get("Enabled") for m in logs.values()
    )
    roles = eks.get("ServiceAccountRoleArns", {})
    if "Worker" in roles:
        assert values["workers"]["serviceAccount"]["roleArn"] == roles["Worker"]
    else:
        assert "serviceAccount" not in values["workers"]


@pytest.mark.parametrize("name", SPEC_IDS)
def test_import_of_get_environment_gives_back_the_spec(name: str) -> None:
    document = json.loads((EXAMPLES / "mwaa" / f"{name}.get-environment.json").read_text())
    expected = load_environment(spec_data(name))
    result = import_environment(document, {"Eks": spec_data(name)["Eks"]})
    assert result.environment == expected
    assert render_values(result.environment) == render_values(expected)
    report = result.report
    assert result.report.to_fill == []
    not_mapped = {problem.field: problem.message for problem in report.not_mapped}
    assert "EKS networking is out of scope" in not_mapped["NetworkConfiguration"]
    assert "Eks.CeleryQueueUrl" in not_mapped["CeleryExecutorQueue"]
    assert "WebserverUrl" in not_mapped
    assert "Name" in report.mapped


def test_import_reports_version_change_and_owned_keys() -> None:
    document = json.loads((EXAMPLES / "mwaa" / "etl-small.get-environment.json").read_text())
    result = import_environment(document)
    changed = {p.field: p.message for p in result.report.changed}
    assert "2.9.2" in changed["AirflowVersion"] and "3.3.2" in changed["AirflowVersion"]
    not_mapped = {p.field: p.message for p in result.report.not_mapped}
    assert "owned by the platform" in not_mapped["AirflowConfigurationOptions['core.executor']"]
    assert "core.executor" not in result.environment.airflow_configuration_options
    # Without an EKS overlay the namespace and region still come out of the MWAA data.
    assert result.environment.eks.namespace == "etl-nightly"
    assert result.environment.eks.region == "us-west-2"
    assert {p.field for p in result.report.to_fill} == {
        "Eks.DatabaseSecret",
        "Eks.ResultBackendSecret",
        "Eks.DatabaseCidrs",
        "Eks.CeleryQueueUrl",
        "Eks.Secrets.FernetKey",
        "Eks.Secrets.ApiSecretKey",
        "Eks.Secrets.JwtSecret",
        "Eks.Auth.Oidc",  # MWAA signs in with IAM; the platform needs an identity provider
        "Eks.Ingress.CertificateArn",  # PUBLIC_ONLY is served over HTTPS only
    }


def test_import_rejects_something_else() -> None:
    from airflow_platform.environment.problems import SpecError

    with pytest.raises(SpecError, match="get-environment"):
        import_environment({"Environments": []})


def test_import_turns_mwaa_secrets_manager_options_into_the_chart_values_to_set() -> None:
    document = json.loads((EXAMPLES / "mwaa" / "analytics-prod.get-environment.json").read_text())
    result = import_environment(document)
    options = result.environment.airflow_configuration_options
    assert "secrets.backend" not in options and "secrets.backend_kwargs" not in options
    hints = [p.message for p in result.report.not_mapped if "in the chart values set" in p.message]
    assert len(hints) == 1
    values = json.loads(hints[0].split("in the chart values set ", 1)[1])
    assert values == {
        "secretsBackend": {
            "type": "aws",
            "aws": {
                "connectionsPrefix": "airflow/connections",
                "variablesPrefix": "airflow/variables",
            },
        }
    }
