"""Every rule MWAA enforces rejects bad input with a message naming the field and the fix."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from env_examples import spec_data

from airflow_platform.environment.config_rules import (
    PLATFORM_OWNED_CONFIG_KEYS,
    config_env_var,
    owned_env_vars,
)
from airflow_platform.environment.model import load_environment
from airflow_platform.environment.problems import SpecError

BASE = spec_data("analytics-prod")
MICRO = spec_data("sandbox-micro")


def _with(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(base)
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
    if value is _DELETE:
        node.pop(last, None)
    else:
        node[last] = value
    return data


_DELETE = object()

# (spec, field path to change, new value, text the field name in the message, fix hint)
CASES = [
    (BASE, "Name", "9lives", "Name", "analytics-prod"),
    (BASE, "Name", _DELETE, "Name", "add it"),
    (BASE, "EnvironmentClass", "mw1.huge", "EnvironmentClass", "mw1.small"),
    (BASE, "AirflowVersion", "2.10.3", "AirflowVersion", "3.3.2"),
    (BASE, "Schedulers", 6, "Schedulers", "2 to 5"),
    (BASE, "Schedulers", 1, "Schedulers", "2 to 5"),
    (MICRO, "Schedulers", 2, "Schedulers", "exactly 1"),
    (MICRO, "MaxWorkers", 3, "MaxWorkers", "exactly 1"),
    (MICRO, "MaxWebservers", 2, "MaxWebservers", "exactly 1"),
    (BASE, "MinWebservers", 1, "MinWebservers", "2 to 5"),
    (BASE, "MaxWebservers", 6, "MaxWebservers", "2 to 5"),
    (BASE, "MinWorkers", 21, "MinWorkers", "MinWorkers <= MaxWorkers"),
    (BASE, "MaxWorkers", 26, "MaxWorkers", "1 to 25"),
    (BASE, "MinWorkers", 0, "MinWorkers", "1 to 25"),
    (BASE, "MinWorkers", "two", "MinWorkers", "whole number"),
    (BASE, "WeeklyMaintenanceWindowStart", "SUN:03:15", "WeeklyMaintenanceWindowStart", "00 or 30"),
    (
        BASE,
        "WeeklyMaintenanceWindowStart",
        "SUNDAY:03:30",
        "WeeklyMaintenanceWindowStart",
        "MON..SUN",
    ),
    (
        BASE,
        "WeeklyMaintenanceWindowStart",
        "SUN:24:00",
        "WeeklyMaintenanceWindowStart",
        "SUN:03:30",
    ),
    (BASE, "WebserverAccessMode", "PUBLIC", "WebserverAccessMode", "PRIVATE_ONLY"),
    (BASE, "WorkerReplacementStrategy", "ROLLING", "WorkerReplacementStrategy", "GRACEFUL"),
    (
        BASE,
        "LoggingConfiguration.TaskLogs.LogLevel",
        "TRACE",
        "LoggingConfiguration.TaskLogs.LogLevel",
        "DEBUG",
    ),
    (
        BASE,
        "LoggingConfiguration.TaskLogs.Enabled",
        "sometimes",
        "LoggingConfiguration.TaskLogs.Enabled",
        "true or false",
    ),
    (BASE, "DagS3Path", "/dags", "DagS3Path", "relative to the bucket"),
    (BASE, "DagS3Path", "s3://acme/dags", "DagS3Path", "relative to the bucket"),
    (BASE, "RequirementsS3Path", "../requirements.txt", "RequirementsS3Path", "no '..'"),
    (BASE, "PluginsS3Path", "plugins.tar.gz", "PluginsS3Path", ".zip"),
    (
        BASE,
        "StartupScriptS3Path",
        _DELETE,
        "StartupScriptS3ObjectVersion",
        "set StartupScriptS3Path",
    ),
    (BASE, "SourceBucketArn", "acme-bucket", "SourceBucketArn", "arn:aws:s3:::"),
    (BASE, "SourceBucketArn", "arn:aws:s3:::Bad_Bucket", "SourceBucketArn", "arn:aws:s3:::"),
    (
        BASE,
        "ExecutionRoleArn",
        "arn:aws:iam::123:role/x",
        "ExecutionRoleArn",
        "arn:aws:iam::123456789012:role/",
    ),
    (BASE, "ExecutionRoleArn", "arn:aws:iam::123456789012:user/bob", "ExecutionRoleArn", "role"),
    (BASE, "KmsKey", "arn:aws:kms:us-east-1:123456789012:secret/x", "KmsKey", "key/"),
    (BASE, "Tags", {"aws:owner": "x"}, "Tags['aws:owner']", "aws:"),
    (BASE, "Tags", {"owner": "x" * 257}, "Tags['owner']", "256"),
    (BASE, "Color", "blue", "Color", "remove it"),
    (BASE, "Eks", _DELETE, "Eks", "add it"),
    (BASE, "Eks.Namespace", "Analytics_Prod", "Eks.Namespace", "airflow-analytics"),
    (BASE, "Eks.Region", "useast1", "Eks.Region", "us-east-1"),
    (BASE, "Eks.CeleryQueueUrl", "sqs://queue", "Eks.CeleryQueueUrl", "https://sqs."),
    (
        BASE,
        "Eks.CeleryQueueUrl",
        "https://sqs.eu-west-1.amazonaws.com/123456789012/q",
        "Eks.CeleryQueueUrl",
        "Eks.Region is us-east-1",
    ),
    (
        BASE,
        "Eks.DagEventQueueUrl",
        "https://sqs.us-east-1.amazonaws.com/queue",
        "Eks.DagEventQueueUrl",
        "SQS queue URL",
    ),
    (
        BASE,
        "Eks.ServiceAccountRoleArns.Worker",
        "worker-role",
        "Eks.ServiceAccountRoleArns.Worker",
        "role/",
    ),
    (
        BASE,
        "Eks.ServiceAccountRoleArns.Webserver",
        "arn:aws:iam::123456789012:role/x",
        "Eks.ServiceAccountRoleArns.Webserver",
        "remove it",
    ),
    (
        BASE,
        "Eks.DatabaseSecret.SecretName",
        "Not A Name",
        "Eks.DatabaseSecret.SecretName",
        "Kubernetes Secret name",
    ),
    (
        BASE,
        "Eks.Secrets.FernetKey.Key",
        "fernet key!",
        "Eks.Secrets.FernetKey.Key",
        "Secret data key",
    ),
    (
        BASE,
        "Eks.Ingress.CertificateArn",
        "arn:aws:iam::123456789012:server-certificate/x",
        "Eks.Ingress.CertificateArn",
        "ACM",
    ),
    (BASE, "Eks.RequirementsOnFailure", "ignore", "Eks.RequirementsOnFailure", "continue"),
    (BASE, "Eks.DatabaseCidrs", ["10.0.16.1/20"], "Eks.DatabaseCidrs", "10.0.16.0/20"),
]


@pytest.mark.parametrize(
    ("base", "path", "value", "field", "hint"),
    CASES,
    ids=[f"{case[1]}={case[2] if case[2] is not _DELETE else '<missing>'}"[:60] for case in CASES],
)
def test_rejected_with_field_and_fix(base, path, value, field, hint) -> None:
    with pytest.raises(SpecError) as caught:
        load_environment(_with(base, path, value))
    fields = [problem.field for problem in caught.value.problems]
    assert field in fields, str(caught.value)
    message = next(p.message for p in caught.value.problems if p.field == field)
    assert hint in message, message
    assert field in str(caught.value)


@pytest.mark.parametrize("key", PLATFORM_OWNED_CONFIG_KEYS)
def test_every_owned_config_key_is_refused(key: str) -> None:
    data = _with(BASE, "AirflowConfigurationOptions", {key: "x"})
    with pytest.raises(SpecError) as caught:
        load_environment(data)
    (problem,) = caught.value.problems
    assert problem.field == f"AirflowConfigurationOptions[{key!r}]"
    assert "owned by the platform" in problem.message and "remove it" in problem.message


@pytest.mark.parametrize(
    "key",
    [
        "Core.parallelism",
        "core",
        "core.parallelism.extra",
        "core.",
        ".parallelism",
        "core-x.y",
        "core.parallelism.",
        "1core.x",
    ],
)
def test_malformed_config_keys_are_refused(key: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_environment(_with(BASE, "AirflowConfigurationOptions", {key: "1"}))
    (problem,) = caught.value.problems
    assert problem.field == f"AirflowConfigurationOptions[{key!r}]"
    assert "section.key" in problem.message


def test_config_value_length_limit() -> None:
    fits = load_environment(_with(BASE, "AirflowConfigurationOptions", {"core.x": "v" * 65_536}))
    assert len(fits.airflow_configuration_options["core.x"]) == 65_536
    with pytest.raises(SpecError) as caught:
        load_environment(_with(BASE, "AirflowConfigurationOptions", {"core.x": "v" * 65_537}))
    assert "at most 65536" in str(caught.value)
    assert "AirflowConfigurationOptions['core.x']" in str(caught.value)


def test_config_values_written_as_yaml_scalars_become_strings() -> None:
    options = {"core.parallelism": 64, "core.load_examples": False, "celery.x": 1.5}
    env = load_environment(_with(BASE, "AirflowConfigurationOptions", options))
    assert env.airflow_configuration_options == {
        "core.parallelism": "64",
        "core.load_examples": "False",
        "celery.x": "1.5",
    }


def test_all_problems_are_reported_at_once() -> None:
    data = _with(BASE, "Schedulers", 9)
    data = _with(data, "MaxWebservers", 9)
    data = _with(data, "AirflowConfigurationOptions", {"core.executor": "x", "BAD": "y"})
    with pytest.raises(SpecError) as caught:
        load_environment(data)
    fields = {p.field for p in caught.value.problems}
    assert fields == {
        "Schedulers",
        "MaxWebservers",
        "AirflowConfigurationOptions['core.executor']",
        "AirflowConfigurationOptions['BAD']",
    }


def test_class_defaults_follow_mwaa() -> None:
    data = {
        k: v
        for k, v in MICRO.items()
        if k not in ("Schedulers", "MinWorkers", "MaxWorkers", "MinWebservers", "MaxWebservers")
    }
    micro = load_environment(data)
    assert (micro.schedulers, micro.min_workers, micro.max_workers) == (1, 1, 1)
    assert (micro.min_webservers, micro.max_webservers) == (1, 1)
    small = load_environment(data | {"EnvironmentClass": "mw1.small"})
    assert (small.schedulers, small.min_workers, small.max_workers) == (2, 1, 10)
    assert (small.min_webservers, small.max_webservers) == (2, 2)


def test_owned_keys_cover_airflow_indirections() -> None:
    names = owned_env_vars()
    assert config_env_var("core.fernet_key") == "AIRFLOW__CORE__FERNET_KEY"
    assert {"AIRFLOW__CORE__FERNET_KEY_CMD", "AIRFLOW__CORE__FERNET_KEY_SECRET"} <= names
    assert len(names) == 3 * len(PLATFORM_OWNED_CONFIG_KEYS)


def test_credentials_go_in_configuration_secrets_not_options() -> None:
    data = _with(BASE, "AirflowConfigurationOptions", {"smtp.smtp_password": "hunter2"})
    with pytest.raises(SpecError) as caught:
        load_environment(data)
    (problem,) = caught.value.problems
    assert problem.field == "AirflowConfigurationOptions['smtp.smtp_password']"
    assert "credential" in problem.message and "Eks.ConfigurationSecrets" in problem.message
    secret = {"smtp.smtp_password": {"SecretName": "airflow-smtp", "Key": "password"}}
    env = load_environment(_with(BASE, "Eks.ConfigurationSecrets", secret))
    assert env.eks.configuration_secrets is not None
    assert env.eks.configuration_secrets["smtp.smtp_password"].secret_name == "airflow-smtp"


@pytest.mark.parametrize(
    ("secrets", "options", "field", "hint"),
    [
        (
            {"core.fernet_key": {"SecretName": "k", "Key": "f"}},
            {},
            "Eks.ConfigurationSecrets['core.fernet_key']",
            "Eks.Secrets.FernetKey",
        ),
        (
            {"Smtp.Password": {"SecretName": "k", "Key": "f"}},
            {},
            "Eks.ConfigurationSecrets['Smtp.Password']",
            "section.key",
        ),
        (
            {"smtp.smtp_user": {"SecretName": "k", "Key": "u"}},
            {"smtp.smtp_user": "airflow"},
            "AirflowConfigurationOptions['smtp.smtp_user']",
            "keep it in one of them only",
        ),
    ],
    ids=["owned-key", "malformed-key", "in-both"],
)
def test_configuration_secrets_follow_the_same_rules(secrets, options, field, hint) -> None:
    data = _with(BASE, "Eks.ConfigurationSecrets", secrets)
    data = _with(data, "AirflowConfigurationOptions", options)
    with pytest.raises(SpecError) as caught:
        load_environment(data)
    messages = {p.field: p.message for p in caught.value.problems}
    assert hint in messages[field], messages
