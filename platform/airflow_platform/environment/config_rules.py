"""MWAA's rules for AirflowConfigurationOptions, and the keys the platform owns.

This module is the single Python source of the owned-key list: the environment model,
the entrypoint's protected variables and the tests all import it. It must stay free of
heavy imports because the container entrypoint loads it on every start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# `section.key`, lower case, as MWAA accepts them.
CONFIG_KEY_PATTERN = re.compile(r"^[a-z]+([a-z0-9._]*[a-z0-9_]+)?$")
MAX_CONFIG_VALUE_LENGTH = 65_536

# Keys the chart sets from its own values (executor, broker, database, secrets, logging and
# metrics plumbing, paths). Letting a user override them would break the platform.
PLATFORM_OWNED_CONFIG_KEYS: tuple[str, ...] = (
    "core.executor",
    "core.sql_alchemy_conn",
    "database.sql_alchemy_conn",
    "database.sql_alchemy_conn_async",
    "core.fernet_key",
    "celery.broker_url",
    "celery.result_backend",
    "celery.worker_enable_remote_control",
    "celery.task_acks_late",
    "celery.worker_prefetch_multiplier",
    "celery.extra_celery_config",
    "celery_broker_transport_options.predefined_queues",
    "api.secret_key",
    "webserver.secret_key",
    "api_auth.jwt_secret",
    "logging.logging_config_class",
    "logging.remote_logging",
    "logging.remote_base_log_folder",
    "metrics.statsd_on",
    "metrics.statsd_host",
    "metrics.statsd_port",
    "core.dags_folder",
    "core.plugins_folder",
    "core.execution_api_server_url",
)

# Why each group is owned, for error messages that tell the user where to go instead.
_OWNED_REASON: dict[str, str] = {
    "core.executor": "the platform always runs CeleryExecutor on SQS",
    "celery.broker_url": "set the queue with Eks.CeleryQueueUrl",
    "celery_broker_transport_options.predefined_queues": "set the queue with Eks.CeleryQueueUrl",
    "celery.result_backend": "the result backend is the metadata database",
    "celery.worker_enable_remote_control": "SQS has no remote control; it stays off",
    "celery.task_acks_late": "drain-safe scale-in needs late acks; it stays on",
    "celery.worker_prefetch_multiplier": "drain-safe scale-in needs a prefetch of 1",
    "celery.extra_celery_config": "the platform sets Celery's shutdown behaviour for drains",
    "core.sql_alchemy_conn": "set the database with Eks.DatabaseSecret",
    "database.sql_alchemy_conn": "set the database with Eks.DatabaseSecret",
    "database.sql_alchemy_conn_async": "set the database with Eks.DatabaseSecret",
    "core.fernet_key": "set it with Eks.Secrets.FernetKey",
    "api.secret_key": "set it with Eks.Secrets.ApiSecretKey",
    "webserver.secret_key": "set it with Eks.Secrets.ApiSecretKey",
    "api_auth.jwt_secret": "set it with Eks.Secrets.JwtSecret",
    "logging.logging_config_class": "logging goes where LoggingConfiguration says",
    "logging.remote_logging": "logging goes where LoggingConfiguration says",
    "logging.remote_base_log_folder": "logging goes where LoggingConfiguration says",
    "metrics.statsd_on": "metrics are wired by the platform",
    "metrics.statsd_host": "metrics are wired by the platform",
    "metrics.statsd_port": "metrics are wired by the platform",
    "core.dags_folder": "DAGs come from DagS3Path",
    "core.plugins_folder": "plugins come from PluginsS3Path",
    "core.execution_api_server_url": "the platform points workers at its API server",
}


def config_env_var(key: str) -> str:
    """`section.key` -> the AIRFLOW__SECTION__KEY variable Airflow reads."""
    section, _, name = key.partition(".")
    return f"AIRFLOW__{section.upper()}__{name.upper()}"


def owned_env_vars() -> frozenset[str]:
    """Every environment variable through which an owned key could be overridden,
    including Airflow's `_CMD` and `_SECRET` indirections."""
    names: set[str] = set()
    for key in PLATFORM_OWNED_CONFIG_KEYS:
        base = config_env_var(key)
        names.update({base, f"{base}_CMD", f"{base}_SECRET"})
    return frozenset(names)


@dataclass(frozen=True)
class ConfigProblem:
    key: str
    message: str


def config_option_problems(key: str, value: str) -> list[ConfigProblem]:
    """What is wrong with one AirflowConfigurationOptions entry (empty when it is fine)."""
    problems: list[ConfigProblem] = []
    if not CONFIG_KEY_PATTERN.match(key) or key.count(".") != 1:
        problems.append(
            ConfigProblem(
                key,
                f"key {key!r} is not 'section.key' in lower case "
                f"(pattern {CONFIG_KEY_PATTERN.pattern} with exactly one dot); "
                "write it like 'core.parallelism'",
            )
        )
    elif key in PLATFORM_OWNED_CONFIG_KEYS:
        problems.append(
            ConfigProblem(
                key,
                f"key {key!r} is owned by the platform and cannot be set "
                f"({_OWNED_REASON[key]}); remove it",
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
