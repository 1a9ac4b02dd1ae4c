"""MWAA's rules for AirflowConfigurationOptions, and the keys users may not set.

This module is the single source of the refused-key and sensitive-key rules: the
environment model, `env import`, the entrypoint's protected variables and the tests import
it, and the chart reads the same rules from charts/airflow-platform/files/config-rules.json,
which `python -m airflow_platform.environment.config_rules` writes (a test keeps the two
equal). It must stay free of heavy imports because the container entrypoint loads it on
every start.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# `section.key`, lower case, as MWAA accepts them.
CONFIG_KEY_PATTERN = re.compile(r"^[a-z]+([a-z0-9._]*[a-z0-9_]+)?$")
MAX_CONFIG_VALUE_LENGTH = 65_536

_SECRET_FIX = "put the value in a Kubernetes Secret and reference it in airflowConfigurationSecrets"
_SPEC_SECRET_FIX = "(environment spec: Eks.ConfigurationSecrets)"


@dataclass(frozen=True)
class Refusal:
    """Why users may not set a key, and what to do instead ("" = just remove it)."""

    why: str
    fix: str = ""

    def message(self, key: str) -> str:
        then = f", and {self.fix}" if self.fix else ""
        return (
            f"key {key!r} is owned by the platform and cannot be set ({self.why}); remove it{then}"
        )


def _same(keys: tuple[str, ...], why: str, fix: str = "") -> dict[str, Refusal]:
    return dict.fromkeys(keys, Refusal(why, fix))


# Keys the platform sets itself or whose change switches a platform control off (the
# executor and its drain-safe Celery settings, the database and shared keys, logging and
# metrics plumbing, where DAGs and plugins come from, authentication, TLS and probes).
REFUSED_KEYS: dict[str, Refusal] = {
    "core.executor": Refusal("the platform always runs CeleryExecutor on SQS"),
    **_same(
        ("core.sql_alchemy_conn", "database.sql_alchemy_conn", "database.sql_alchemy_conn_async"),
        "the database URL comes from a Secret",
        "set database.existingSecret (environment spec: Eks.DatabaseSecret)",
    ),
    "core.fernet_key": Refusal(
        "the Fernet key comes from a Secret",
        "set secrets.fernetKey (environment spec: Eks.Secrets.FernetKey)",
    ),
    **_same(
        ("celery.broker_url", "celery_broker_transport_options.predefined_queues"),
        "the broker is the platform's SQS queue",
        "set celery.sqsQueueUrl (environment spec: Eks.CeleryQueueUrl)",
    ),
    "celery.result_backend": Refusal("the result backend is the metadata database"),
    "celery.worker_enable_remote_control": Refusal("SQS has no remote control; it stays off"),
    **_same(
        (
            "celery.task_acks_late",
            "celery.worker_prefetch_multiplier",
            "celery.extra_celery_config",
            "celery.celery_config_options",
        ),
        "drain-safe worker scale-in depends on the platform's Celery settings",
    ),
    "celery_broker_transport_options.visibility_timeout": Refusal(
        "it must cover the workers' graceful drain", "set celery.visibilityTimeout"
    ),
    "celery_broker_transport_options.is_secure": Refusal(
        "TLS to SQS is a chart setting", "set celery.isSecure"
    ),
    "celery_broker_transport_options.region": Refusal(
        "the region is the environment's", "set aws.region (environment spec: Eks.Region)"
    ),
    **_same(
        ("api.secret_key", "webserver.secret_key"),
        "the API secret key comes from a Secret",
        "set secrets.apiSecretKey (environment spec: Eks.Secrets.ApiSecretKey)",
    ),
    **_same(
        (
            "logging.logging_config_class",
            "logging.remote_logging",
            "logging.remote_base_log_folder",
        ),
        "logs go where the logging values say",
        "set logging.* (environment spec: LoggingConfiguration)",
    ),
    "logging.base_log_folder": Refusal(
        "local logs live on the pod's logs volume (/opt/airflow/logs)"
    ),
    **_same(
        ("metrics.statsd_on", "metrics.statsd_host", "metrics.statsd_port"),
        "metrics are wired by the platform",
        "set metrics.statsd.*",
    ),
    **_same(
        (
            "core.dags_folder",
            "dag_processor.dag_bundle_config_list",
            "dag_processor.dag_bundle_storage_path",
        ),
        "DAGs come from the S3 bucket through dagsync",
        "set dags.s3.dagsPrefix (environment spec: DagS3Path)",
    ),
    "core.plugins_folder": Refusal(
        "plugins come from plugins.zip through dagsync",
        "set dags.s3.pluginsKey (environment spec: PluginsS3Path)",
    ),
    "core.execution_api_server_url": Refusal("workers reach the API server the chart runs"),
    "core.auth_manager": Refusal(
        "the auth manager is chosen by the chart's auth values", "set auth.manager"
    ),
    **_same(
        ("api.auth_backends", "webserver.config_file"),
        "authentication is configured by the chart's auth values",
    ),
    **_same(
        ("api.expose_config", "webserver.expose_config"),
        "the configuration holds platform settings and stays hidden from the UI",
    ),
    "core.hide_sensitive_var_conn_fields": Refusal(
        "masking of sensitive connection and variable fields stays on"
    ),
    "api.base_url": Refusal(
        "the API server's address follows the ingress",
        "set ingress.host (environment spec: Eks.Ingress.Host)",
    ),
    **_same(
        ("api.host", "api.port"),
        "the Service and the probes reach the API server on the chart's port",
    ),
    **_same(
        ("api.ssl_cert", "api.ssl_key"),
        "TLS ends at the ingress; probes and the execution API speak HTTP to the pod",
        "set ingress.certificateArn",
    ),
    **_same(
        ("scheduler.enable_health_check", "scheduler.scheduler_health_check_server_port"),
        "the scheduler's liveness probe depends on it",
    ),
    **_same(
        (
            "secrets.backend",
            "secrets.backend_kwargs",
            "workers.secrets_backend",
            "workers.secrets_backend_kwargs",
        ),
        "the secrets backend is configured by the chart",
        "set secretsBackend (type aws or vault)",
    ),
}

# Whole families of keys, by how the key begins.
REFUSED_PREFIXES: dict[str, Refusal] = {
    "api_auth.": Refusal(
        "API tokens are signed with the platform's JWT secret or signing key, and its settings",
        "set secrets.jwtSecret (environment spec: Eks.Secrets.JwtSecret), or secrets.jwtSigning "
        "for a signing key",
    ),
    "core.simple_auth_manager_": Refusal(
        "SimpleAuthManager is a trial convenience configured by the chart",
        "set auth.simpleAuthManagerUsers, or a real auth manager with auth.manager",
    ),
    "fab.": Refusal("the FAB auth manager is configured by the chart's auth values"),
}

# Airflow's indirections: `<key>_cmd` runs a command, `<key>_secret` reads the secrets backend.
REFUSED_SUFFIXES: dict[str, Refusal] = {
    "_cmd": Refusal(
        "Airflow would run a command to read the value", f"{_SECRET_FIX} {_SPEC_SECRET_FIX}"
    ),
    "_secret": Refusal(
        "Airflow would read the value from the secrets backend under this name",
        f"{_SECRET_FIX} {_SPEC_SECRET_FIX}",
    ),
}

# Options whose value is a credential: accepted only as a reference to a Kubernetes Secret
# (rendered as a secretKeyRef env entry, never a plain value, never in the ConfigMap). The
# rule looks at the key's name (after the dot). `_key` alone is not enough: ssl_key and the
# like are file paths, so only the credential kinds of key are named.
SENSITIVE_NAME = re.compile(
    r"password|passwd|secret|token|credential|dsn|api_key|access_key|private_key"
)
# A key naming a file holds a path, not the credential itself (passwords_file, ..._key_path).
FILE_NAME = re.compile(r"(_file|_path)$")
# Any value holding a URL with a password (scheme://user:password@host) is a credential too.
CREDENTIAL_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s@:]*:[^/\s@]+@")

# Compatibility name: the exact keys.
PLATFORM_OWNED_CONFIG_KEYS: tuple[str, ...] = tuple(REFUSED_KEYS)


def config_env_var(key: str) -> str:
    """`section.key` -> the AIRFLOW__SECTION__KEY variable Airflow reads."""
    section, _, name = key.partition(".")
    return f"AIRFLOW__{section.upper()}__{name.upper()}"


def env_var_config_key(name: str) -> str | None:
    """AIRFLOW__SECTION__KEY -> `section.key` (None for any other variable)."""
    if not name.startswith("AIRFLOW__"):
        return None
    section, sep, key = name.removeprefix("AIRFLOW__").partition("__")
    if not (section and sep and key):
        return None
    return f"{section.lower()}.{key.lower()}"


def refusal(key: str) -> Refusal | None:
    """Why users may not set `key` (None when they may)."""
    if key in REFUSED_KEYS:
        return REFUSED_KEYS[key]
    for prefix, rule in REFUSED_PREFIXES.items():
        if key.startswith(prefix):
            return rule
    for suffix, rule in REFUSED_SUFFIXES.items():
        if key.endswith(suffix):
            return rule
    return None


def is_sensitive(key: str) -> bool:
    name = key.partition(".")[2]
    return bool(SENSITIVE_NAME.search(name)) and not FILE_NAME.search(name)


def owned_env_vars() -> frozenset[str]:
    """The variables of every exact refused key, with Airflow's `_CMD` and `_SECRET`
    indirections (the prefix and suffix rules are checked by `refused_env_var`)."""
    names: set[str] = set()
    for key in PLATFORM_OWNED_CONFIG_KEYS:
        base = config_env_var(key)
        names.update({base, f"{base}_CMD", f"{base}_SECRET"})
    return frozenset(names)


def refused_env_var(name: str) -> Refusal | None:
    """Why a process other than the platform may not set environment variable `name`
    (AIRFLOW__SECTION__KEY of a refused key, or its _CMD / _SECRET indirection)."""
    key = env_var_config_key(name)
    return refusal(key) if key else None


@dataclass(frozen=True)
class ConfigProblem:
    key: str
    message: str


def _key_format_problem(key: str) -> ConfigProblem | None:
    if not CONFIG_KEY_PATTERN.match(key) or key.count(".") != 1:
        return ConfigProblem(
            key,
            f"key {key!r} is not 'section.key' in lower case "
            f"(pattern {CONFIG_KEY_PATTERN.pattern} with exactly one dot); "
            "write it like 'core.parallelism'",
        )
    return None


def config_option_problems(key: str, value: str) -> list[ConfigProblem]:
    """What is wrong with one AirflowConfigurationOptions entry (empty when it is fine)."""
    problems: list[ConfigProblem] = []
    bad_format = _key_format_problem(key)
    rule = refusal(key)
    if bad_format:
        problems.append(bad_format)
    elif rule:
        problems.append(ConfigProblem(key, rule.message(key)))
    elif is_sensitive(key):
        problems.append(
            ConfigProblem(
                key,
                f"key {key!r} holds a credential and is never written as a plain value; "
                f"{_SECRET_FIX} {_SPEC_SECRET_FIX}",
            )
        )
    elif CREDENTIAL_URL.search(value):
        problems.append(
            ConfigProblem(
                key,
                f"value of {key!r} is a URL with a password; {_SECRET_FIX} {_SPEC_SECRET_FIX}",
            )
        )
    if len(value) > MAX_CONFIG_VALUE_LENGTH:
        problems.append(
            ConfigProblem(
                key,
                f"value of {key!r} is {len(value)} characters; "
                f"MWAA allows at most {MAX_CONFIG_VALUE_LENGTH}: shorten it",
            )
        )
    return problems


def config_secret_problems(key: str) -> list[ConfigProblem]:
    """What is wrong with one key of the options read from Kubernetes Secrets."""
    bad_format = _key_format_problem(key)
    if bad_format:
        return [bad_format]
    rule = refusal(key)
    return [ConfigProblem(key, rule.message(key))] if rule else []


def chart_rules() -> dict[str, Any]:
    """The rules as the chart reads them (files/config-rules.json)."""

    def rules(table: dict[str, Refusal]) -> dict[str, dict[str, str]]:
        return {match: {"why": rule.why, "fix": rule.fix} for match, rule in table.items()}

    return {
        "_comment": "Generated by `python -m airflow_platform.environment.config_rules`; "
        "edit platform/airflow_platform/environment/config_rules.py instead.",
        "keys": rules(REFUSED_KEYS),
        "prefixes": rules(REFUSED_PREFIXES),
        "suffixes": rules(REFUSED_SUFFIXES),
        "sensitiveName": SENSITIVE_NAME.pattern,
        "fileName": FILE_NAME.pattern,
        "credentialUrl": CREDENTIAL_URL.pattern,
        "secretFix": _SECRET_FIX,
    }


def chart_rules_json() -> str:
    return json.dumps(chart_rules(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":  # writes the chart's copy: python -m ...config_rules [PATH]
    target = Path(
        sys.argv[1] if len(sys.argv) > 1 else "charts/airflow-platform/files/config-rules.json"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(chart_rules_json())
    print(f"wrote {target}")
