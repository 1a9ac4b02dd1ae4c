"""The environment spec: MWAA's own shape plus the EKS settings MWAA does not have.

Field names are MWAA's (PascalCase, as in `aws mwaa create-environment`), so a spec reads
like the MWAA API; the `Eks` section (environment/eks.py) holds what a self-hosted
environment needs in addition (namespace, IRSA roles, the Aurora and SQS endpoints, the
Secrets). This module holds the MWAA fields, the per-class capacity rules and loading.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from airflow_platform.environment.classes import (
    DEFAULT_ENVIRONMENT_CLASS,
    ENVIRONMENT_CLASSES,
    EnvironmentClassName,
)
from airflow_platform.environment.config_rules import (
    config_option_problems,
    config_secret_problems,
)
from airflow_platform.environment.eks import (  # noqa: F401  (the public import path)
    AirflowRole,
    AuthManager,
    AuthSettings,
    AwsAuthSettings,
    ComponentRoles,
    DatabaseSecretRef,
    EksSettings,
    Image,
    Ingress,
    OidcSettings,
    OnFailure,
    PlatformSecrets,
    SecretRef,
)
from airflow_platform.environment.problems import Problem, SpecError, problems_from, rules_error
from airflow_platform.environment.spec_fields import (
    AWS_QUEUE_REGION,
    BUCKET_ARN,
    BucketArn,
    EnvironmentName,
    KmsKey,
    MaintenanceWindow,
    RoleArn,
    Spec,
    to_snake,
)

SUPPORTED_AIRFLOW_VERSIONS = ("3.3.2",)

LogLevel = Literal["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"]
AccessMode = Literal["PUBLIC_ONLY", "PRIVATE_ONLY"]
ReplacementStrategy = Literal["GRACEFUL", "FORCED"]


class ModuleLogging(Spec):
    enabled: bool = False
    log_level: LogLevel = "INFO"


class LoggingConfiguration(Spec):
    dag_processing_logs: ModuleLogging = Field(default_factory=ModuleLogging)
    scheduler_logs: ModuleLogging = Field(default_factory=ModuleLogging)
    task_logs: ModuleLogging = Field(default_factory=ModuleLogging)
    webserver_logs: ModuleLogging = Field(default_factory=ModuleLogging)
    worker_logs: ModuleLogging = Field(default_factory=ModuleLogging)


class Environment(Spec):
    """An environment spec. Optional capacity fields get MWAA's per-class defaults."""

    name: EnvironmentName
    environment_class: EnvironmentClassName = DEFAULT_ENVIRONMENT_CLASS
    airflow_version: str = SUPPORTED_AIRFLOW_VERSIONS[-1]
    schedulers: int | None = None
    min_workers: int | None = None
    max_workers: int | None = None
    min_webservers: int | None = None
    max_webservers: int | None = None
    airflow_configuration_options: dict[str, str] = Field(default_factory=dict)
    source_bucket_arn: BucketArn
    dag_s3_path: str
    plugins_s3_path: str | None = None
    plugins_s3_object_version: str | None = None
    requirements_s3_path: str | None = None
    requirements_s3_object_version: str | None = None
    startup_script_s3_path: str | None = None
    startup_script_s3_object_version: str | None = None
    webserver_access_mode: AccessMode = "PRIVATE_ONLY"
    logging_configuration: LoggingConfiguration = Field(default_factory=LoggingConfiguration)
    kms_key: KmsKey | None = None
    execution_role_arn: RoleArn
    weekly_maintenance_window_start: MaintenanceWindow | None = None
    worker_replacement_strategy: ReplacementStrategy = "GRACEFUL"
    tags: dict[str, str] = Field(default_factory=dict)
    eks: EksSettings

    @field_validator("airflow_version")
    @classmethod
    def _version(cls, value: str) -> str:
        if value not in SUPPORTED_AIRFLOW_VERSIONS:
            raise ValueError(
                f"Airflow {value} is not offered; this platform runs "
                f"{', '.join(SUPPORTED_AIRFLOW_VERSIONS)}: set AirflowVersion to one of them"
            )
        return value

    @field_validator("airflow_configuration_options", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        # MWAA stores strings; YAML authors write `core.parallelism: 64` or `true`.
        if not isinstance(value, dict):
            return value
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(item, bool):
                out[key] = "True" if item else "False"
            elif isinstance(item, int | float):
                out[key] = str(item)
            else:
                out[key] = item
        return out

    @model_validator(mode="after")
    def _class_rules(self) -> Environment:
        spec = ENVIRONMENT_CLASSES[self.environment_class]
        problems: list[Problem] = []
        self.schedulers = _in_range(
            problems, "Schedulers", self.schedulers, spec.schedulers, spec.name, "schedulers"
        )
        lo, hi = spec.webservers
        self.min_webservers = _in_range(
            problems, "MinWebservers", self.min_webservers, (lo, hi), spec.name, "webservers", lo
        )
        self.max_webservers = _in_range(
            problems, "MaxWebservers", self.max_webservers, (lo, hi), spec.name, "webservers", lo
        )
        if self.min_webservers > self.max_webservers:
            problems.append(
                Problem(
                    "MinWebservers",
                    f"{self.min_webservers} is more than MaxWebservers {self.max_webservers}; "
                    "make MinWebservers <= MaxWebservers",
                )
            )
        limit = spec.max_workers_limit
        self.min_workers = _in_range(
            problems, "MinWorkers", self.min_workers, (1, limit), spec.name, "workers", 1
        )
        self.max_workers = _in_range(
            problems,
            "MaxWorkers",
            self.max_workers,
            (1, limit),
            spec.name,
            "workers",
            min(spec.default_max_workers, limit),
        )
        if self.min_workers > self.max_workers:
            problems.append(
                Problem(
                    "MinWorkers",
                    f"{self.min_workers} is more than MaxWorkers {self.max_workers}; "
                    "make MinWorkers <= MaxWorkers",
                )
            )
        problems.extend(self._config_problems())
        problems.extend(self._tag_problems())
        problems.extend(self._s3_path_problems())
        problems.extend(self._region_problems())
        if problems:
            raise rules_error(problems)
        return self

    def _config_problems(self) -> list[Problem]:
        secrets = self.eks.configuration_secrets or {}
        problems = [
            Problem(f"AirflowConfigurationOptions[{p.key!r}]", p.message)
            for key, item in self.airflow_configuration_options.items()
            for p in config_option_problems(key, item)
        ]
        problems += [
            Problem(f"Eks.ConfigurationSecrets[{p.key!r}]", p.message)
            for key in secrets
            for p in config_secret_problems(key)
        ]
        problems += [
            Problem(
                f"AirflowConfigurationOptions[{key!r}]",
                "is also in Eks.ConfigurationSecrets; keep it in one of them only",
            )
            for key in self.airflow_configuration_options
            if key in secrets
        ]
        return problems

    def _tag_problems(self) -> list[Problem]:
        problems: list[Problem] = []
        if len(self.tags) > 50:
            problems.append(Problem("Tags", f"{len(self.tags)} tags; MWAA allows at most 50"))
        for key, item in self.tags.items():
            if not 1 <= len(key) <= 128 or key.lower().startswith("aws:"):
                problems.append(
                    Problem(
                        f"Tags[{key!r}]",
                        "keys are 1-128 characters and may not start with 'aws:'; rename it",
                    )
                )
            if len(item) > 256:
                problems.append(
                    Problem(f"Tags[{key!r}]", "values are at most 256 characters; shorten it")
                )
        return problems

    @property
    def release_name(self) -> str:
        """A Helm release name derived from Name (lower case, '-' for '_')."""
        return re.sub(r"[^a-z0-9-]+", "-", self.name.lower()).strip("-")[:53].rstrip("-")

    def _s3_path_problems(self) -> list[Problem]:
        problems: list[Problem] = []
        for field, path, suffix in (
            ("DagS3Path", self.dag_s3_path, None),
            ("PluginsS3Path", self.plugins_s3_path, ".zip"),
            ("RequirementsS3Path", self.requirements_s3_path, None),
            ("StartupScriptS3Path", self.startup_script_s3_path, None),
        ):
            if path is None:
                continue
            if path.startswith(("/", "s3://")) or not path or ".." in path.split("/"):
                problems.append(
                    Problem(
                        field,
                        f"{path!r} must be a path relative to the bucket "
                        "(no leading '/', no 's3://', no '..'), e.g. "
                        f"{'dags' if field == 'DagS3Path' else 'plugins.zip'}",
                    )
                )
            elif suffix and not path.endswith(suffix):
                problems.append(Problem(field, f"{path!r} must be a {suffix} file"))
        for kind in ("Plugins", "Requirements", "StartupScript"):
            path = getattr(self, f"{to_snake(kind)}_s3_path")
            version = getattr(self, f"{to_snake(kind)}_s3_object_version")
            if version is not None and path is None:
                problems.append(
                    Problem(
                        f"{kind}S3ObjectVersion",
                        f"is set but {kind}S3Path is not; set {kind}S3Path or remove the version",
                    )
                )
        return problems

    def _region_problems(self) -> list[Problem]:
        problems: list[Problem] = []
        for field, url in (
            ("Eks.CeleryQueueUrl", self.eks.celery_queue_url),
            ("Eks.DagEventQueueUrl", self.eks.dag_event_queue_url),
        ):
            match = AWS_QUEUE_REGION.match(url or "")
            if match and match.group(1) != self.eks.region:
                problems.append(
                    Problem(
                        field,
                        f"queue is in {match.group(1)} but Eks.Region is {self.eks.region}; "
                        "use a queue in the environment's region",
                    )
                )
        return problems

    @property
    def bucket(self) -> str:
        match = BUCKET_ARN.match(self.source_bucket_arn)
        assert match, "validated above"
        return match.group(1)

    def missing_for_deploy(self) -> list[Problem]:
        """What a deployment still needs: the EKS settings, and HTTPS for a public ALB."""
        missing = self.eks.missing_for_deploy()
        if self.webserver_access_mode == "PUBLIC_ONLY" and not self.eks.ingress.certificate_arn:
            missing.append(
                Problem(
                    "Eks.Ingress.CertificateArn",
                    "not set; WebserverAccessMode PUBLIC_ONLY is served over HTTPS only: give "
                    "an ACM certificate ARN, or choose PRIVATE_ONLY",
                )
            )
        return missing

    def to_spec_dict(self) -> dict[str, Any]:
        """The spec as it is written to YAML: MWAA field names, unset fields left out."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def _in_range(
    problems: list[Problem],
    field: str,
    value: int | None,
    allowed: tuple[int, int],
    class_name: str,
    what: str,
    default: int | None = None,
) -> int:
    lo, hi = allowed
    if value is None:
        return lo if default is None else default
    if not lo <= value <= hi:
        allowed_text = f"exactly {lo}" if lo == hi else f"{lo} to {hi}"
        problems.append(
            Problem(
                field,
                f"{class_name} allows {allowed_text} {what} (got {value}); "
                f"set {field} to {allowed_text.removeprefix('exactly ')}",
            )
        )
    return value


def load_environment(data: Any, source: str = "environment spec") -> Environment:
    """Validate a parsed spec; raise SpecError listing every problem with its field."""
    if not isinstance(data, dict):
        raise SpecError(
            [Problem("(spec)", "expected a mapping of MWAA fields (Name, EnvironmentClass, ...)")],
            source,
        )
    try:
        return Environment.model_validate(data)
    except ValidationError as exc:
        raise SpecError(problems_from(exc), source) from None


def load_environment_file(path: Path) -> Environment:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SpecError([Problem("(file)", f"not valid YAML: {exc}")], str(path)) from None
    return load_environment(data, str(path))


def dump_environment(env: Environment) -> str:
    return yaml.safe_dump(env.to_spec_dict(), sort_keys=False, default_flow_style=False)
