"""`aws mwaa get-environment` JSON -> an environment spec, with an account of what mapped."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from airflow_platform.environment.config_rules import config_option_problems
from airflow_platform.environment.model import (
    SUPPORTED_AIRFLOW_VERSIONS,
    Environment,
    load_environment,
)
from airflow_platform.environment.problems import Problem, SpecError
from airflow_platform.merge import deep_merge

# Fields copied as they are: MWAA's configuration of the environment.
_COPIED = (
    "Name",
    "EnvironmentClass",
    "Schedulers",
    "MinWorkers",
    "MaxWorkers",
    "MinWebservers",
    "MaxWebservers",
    "SourceBucketArn",
    "DagS3Path",
    "PluginsS3Path",
    "PluginsS3ObjectVersion",
    "RequirementsS3Path",
    "RequirementsS3ObjectVersion",
    "StartupScriptS3Path",
    "StartupScriptS3ObjectVersion",
    "WebserverAccessMode",
    "KmsKey",
    "ExecutionRoleArn",
    "WeeklyMaintenanceWindowStart",
    "WorkerReplacementStrategy",
    "Tags",
)

# Fields MWAA reports that have no counterpart here, and why.
_NOT_MAPPED: dict[str, str] = {
    "NetworkConfiguration": "VPC subnets and security groups belong to the EKS cluster and its "
    "node groups; EKS networking is out of scope for the environment spec",
    "ServiceRoleArn": "MWAA's service-linked role has no counterpart; pods use IRSA roles",
    "WebserverUrl": "the UI address comes from your ingress (set Eks.Ingress.Host)",
    "WebserverVpcEndpointService": "MWAA-managed VPC endpoint; the ingress replaces it",
    "DatabaseVpcEndpointService": "MWAA-managed VPC endpoint; the database is your Aurora "
    "cluster (Eks.DatabaseSecret)",
    "EndpointManagement": "VPC endpoint ownership is an MWAA concept; the ingress replaces it",
    "CeleryExecutorQueue": "MWAA's own SQS queue cannot be reused; create one and set "
    "Eks.CeleryQueueUrl",
    "Status": "runtime state, not configuration",
    "CreatedAt": "runtime state, not configuration",
    "LastUpdate": "runtime state, not configuration",
    "Arn": "identifies the MWAA environment; only its region is kept (Eks.Region)",
    "AirflowVersion": "",  # handled specially
    "LoggingConfiguration": "",  # handled specially
    "AirflowConfigurationOptions": "",  # handled specially
}

_ARN_REGION = re.compile(r"^arn:aws(?:-[a-z]+)*:airflow:([a-z0-9-]+):\d{12}:environment/")


@dataclass
class ImportReport:
    mapped: list[str] = field(default_factory=list)
    changed: list[Problem] = field(default_factory=list)  # mapped, but with a different value
    not_mapped: list[Problem] = field(default_factory=list)
    to_fill: list[Problem] = field(default_factory=list)  # needed before the spec can deploy


@dataclass
class ImportResult:
    environment: Environment
    report: ImportReport


_KWARG_TO_VALUE = {
    "connections_prefix": "connectionsPrefix",
    "variables_prefix": "variablesPrefix",
    "config_prefix": "configPrefix",
}


def _secrets_backend_hint(options: dict[str, Any]) -> Problem | None:
    """MWAA's Secrets Manager backend, as the chart's secretsBackend values to set instead."""
    if "SecretsManagerBackend" not in str(options.get("secrets.backend", "")):
        return None
    try:
        kwargs = json.loads(str(options.get("secrets.backend_kwargs") or "{}"))
    except ValueError:
        kwargs = {}
    aws = {
        value: kwargs[kwarg]
        for kwarg, value in _KWARG_TO_VALUE.items()
        if isinstance(kwargs, dict) and isinstance(kwargs.get(kwarg), str)
    }
    return Problem(
        "AirflowConfigurationOptions['secrets.backend']",
        "MWAA looked secrets up in AWS Secrets Manager; in the chart values set "
        + json.dumps({"secretsBackend": {"type": "aws", "aws": aws}}),
    )


def _dags_url(mwaa: dict[str, Any]) -> str:
    """s3://bucket/dags for `migrate check`, from SourceBucketArn and DagS3Path."""
    bucket = str(mwaa.get("SourceBucketArn") or "").rsplit(":", 1)[-1] or "BUCKET"
    return f"s3://{bucket}/{str(mwaa.get('DagS3Path') or 'dags').strip('/')}"


def namespace_for(name: str) -> str:
    """A Kubernetes namespace derived from an MWAA environment name."""
    slug = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    return (slug or "airflow")[:63].rstrip("-")


def import_environment(
    document: Any,
    eks_overlay: dict[str, Any] | None = None,
    namespace: str | None = None,
    region: str | None = None,
) -> ImportResult:
    """Map a get-environment response; `eks_overlay` supplies the Eks section MWAA lacks."""
    if isinstance(document, dict) and isinstance(document.get("Environment"), dict):
        mwaa: dict[str, Any] = document["Environment"]
    elif isinstance(document, dict) and "Name" in document:
        mwaa = document  # the inner object alone is accepted too
    else:
        raise SpecError(
            [
                Problem(
                    "Environment",
                    "not found; pass the JSON printed by `aws mwaa get-environment --name X`",
                )
            ],
            "MWAA get-environment JSON",
        )
    report = ImportReport()
    spec: dict[str, Any] = {}

    for key in _COPIED:
        if key in mwaa and mwaa[key] is not None:
            spec[key] = mwaa[key]
            report.mapped.append(key)
    strategy = (mwaa.get("LastUpdate") or {}).get("WorkerReplacementStrategy")
    if strategy and "WorkerReplacementStrategy" not in spec:
        spec["WorkerReplacementStrategy"] = strategy
        report.mapped.append("LastUpdate.WorkerReplacementStrategy -> WorkerReplacementStrategy")

    version = mwaa.get("AirflowVersion")
    target = SUPPORTED_AIRFLOW_VERSIONS[-1]
    spec["AirflowVersion"] = target
    if version == target:
        report.mapped.append("AirflowVersion")
    elif version:
        report.changed.append(
            Problem(
                "AirflowVersion",
                f"MWAA runs {version}; the platform runs {target}. Before switching, check "
                "the DAGs, plugins, requirements, startup script and configuration options: "
                f"airflow-platform migrate check {_dags_url(mwaa)} --environment <this JSON>",
            )
        )

    options = dict(mwaa.get("AirflowConfigurationOptions") or {})
    kept: dict[str, str] = {}
    for key, value in options.items():
        # An option the spec would refuse (owned by the platform, a command or secrets
        # indirection, a credential in plain text, malformed) is dropped and reported with
        # its fix, so the rest of the environment still imports.
        problems = config_option_problems(str(key), str(value))
        if problems:
            report.not_mapped.extend(
                Problem(f"AirflowConfigurationOptions[{key!r}]", f"dropped: {p.message}")
                for p in problems
            )
        else:
            kept[key] = value
    hint = _secrets_backend_hint(options)
    if hint:
        report.not_mapped.append(hint)
    if options:
        spec["AirflowConfigurationOptions"] = kept
        report.mapped.append(f"AirflowConfigurationOptions ({len(kept)} of {len(options)} keys)")

    logging_in = mwaa.get("LoggingConfiguration") or {}
    logging_out: dict[str, Any] = {}
    for module, settings in logging_in.items():
        if not isinstance(settings, dict):
            continue
        logging_out[module] = {
            key: settings[key] for key in ("Enabled", "LogLevel") if key in settings
        }
        report.mapped.append(f"LoggingConfiguration.{module}")
        if settings.get("CloudWatchLogGroupArn"):
            report.not_mapped.append(
                Problem(
                    f"LoggingConfiguration.{module}.CloudWatchLogGroupArn",
                    "the platform names its log groups airflow-<Name>-<Type> itself",
                )
            )
    if logging_out:
        spec["LoggingConfiguration"] = logging_out

    for key, value in mwaa.items():
        if key in _COPIED or key in spec or value in (None, {}, []):
            continue
        reason = _NOT_MAPPED.get(key)
        if reason == "":
            continue
        report.not_mapped.append(
            Problem(key, reason or "not an MWAA setting the platform knows; left out")
        )

    arn_region = _ARN_REGION.match(str(mwaa.get("Arn", "")))
    eks: dict[str, Any] = {
        "Namespace": namespace or namespace_for(str(mwaa.get("Name", "airflow"))),
        "Region": region or (arn_region.group(1) if arn_region else ""),
    }
    if arn_region and not region:
        report.mapped.append("Arn (region) -> Eks.Region")
    if eks_overlay:
        overlay = eks_overlay.get("Eks", eks_overlay)
        eks = deep_merge(eks, overlay)
        report.mapped.append(f"Eks ({', '.join(sorted(overlay))}) from the EKS overlay")
    spec["Eks"] = eks

    environment = load_environment(spec, "imported environment")
    report.to_fill = environment.missing_for_deploy()
    return ImportResult(environment, report)
