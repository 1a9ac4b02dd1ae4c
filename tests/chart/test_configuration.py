"""The Airflow configuration every component gets, from one template: MWAA's defaults, the
platform-owned settings, and airflowConfigurationOptions as AIRFLOW__SECTION__KEY."""

from __future__ import annotations

import json
import re

import pytest

from .conftest import AIRFLOW_COMPONENTS, container, env_of, env_values

pytestmark = pytest.mark.chart

MWAA_DEFAULTS = {
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "30",
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "300",
    # min_file_process_interval: 300 s with parse requests (test_dagsync_parse_requests.py).
    "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "50",
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "1800",
    "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "43200",
    "AIRFLOW__CELERY__WORKER_ENABLE_REMOTE_CONTROL": "False",
}


def airflow_env(rendering, component: str) -> dict[str, str]:
    return env_values(container(rendering.one("Deployment", component), component))


@pytest.mark.parametrize("component", [*AIRFLOW_COMPONENTS, "execution-api"])
def test_every_component_gets_the_same_configuration(default, component) -> None:
    """The same configuration everywhere; only the secrets differ (test_least_privilege.py)."""
    scheduler = env_values(container(default.one("Deployment", "scheduler"), "scheduler"))
    mine = env_values(container(default.one("Deployment", component), component))
    # Only the log level may differ (MWAA sets one per log type), and the result backend is
    # set where its Secret is read.
    differing = {k for k in scheduler.keys() | mine.keys() if scheduler.get(k) != mine.get(k)}
    own = {"api-server": {"AIRFLOW_PLATFORM_OIDC_CLIENT_SECRET"}}.get(component, set())
    assert differing <= {"AIRFLOW__LOGGING__LOGGING_LEVEL", "AIRFLOW__CELERY__RESULT_BACKEND", *own}


def test_mwaa_defaults(default) -> None:
    env = airflow_env(default, "worker")
    assert {k: env[k] for k in MWAA_DEFAULTS} == MWAA_DEFAULTS


def test_celery_on_sqs(eks) -> None:
    env = airflow_env(eks, "scheduler")
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "sqs://"
    assert env["AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__REGION"] == "eu-west-1"
    assert env["AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__IS_SECURE"] == "True"
    queues = json.loads(env["AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__PREDEFINED_QUEUES"])
    assert queues == {
        "default": {"url": "https://sqs.eu-west-1.amazonaws.com/123456789012/analytics-prod-celery"}
    }
    assert float(env["AIRFLOW__CELERY__OPERATION_TIMEOUT"]) > 1.0


@pytest.mark.parametrize("component", ["worker", "scheduler", "triggerer", "dag-processor"])
def test_execution_api_url_is_the_internal_service(default, component) -> None:
    env = airflow_env(default, component)
    service = default.one("Service", "execution-api")
    port = service["spec"]["ports"][0]["port"]
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == (
        f"http://{service['metadata']['name']}.airflow.svc.cluster.local:{port}/execution/"
    )


def test_folders_and_paths_per_contract(default) -> None:
    env = airflow_env(default, "dag-processor")
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/airflow/sync/dags/current"
    assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == "/opt/airflow/sync/plugins/current"
    assert env["AIRFLOW_HOME"] == "/opt/airflow"
    assert env["AIRFLOW_PLATFORM_SYNC_ROOT"] == "/opt/airflow/sync"
    assert env["AIRFLOW_PLATFORM_PACKAGES_DIR"] == "/opt/airflow/packages"
    assert env["AIRFLOW_PLATFORM_WHEEL_CACHE"] == "/opt/airflow/wheel-cache"
    assert env["AIRFLOW_PLATFORM_REQUIREMENTS_ON_FAILURE"] == "fail"


@pytest.mark.parametrize("component", AIRFLOW_COMPONENTS)
def test_entrypoint_is_the_bootstrap(default, component) -> None:
    c = container(default.one("Deployment", component), component)
    assert c["command"] == [
        "airflow-platform",
        "bootstrap",
        "--component",
        component,
        "--",
        "airflow",
    ]


def test_secrets_come_from_existing_secrets(default) -> None:
    env = env_of(container(default.one("Deployment", "api-server"), "api-server"))
    refs = {
        name: env[name]["valueFrom"]["secretKeyRef"]
        for name in (
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
            "AIRFLOW__CORE__FERNET_KEY",
            "AIRFLOW__API__SECRET_KEY",
            "AIRFLOW__API_AUTH__JWT_SECRET",
        )
    }
    assert refs == {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": {"name": "airflow-database", "key": "connection"},
        "AIRFLOW__CORE__FERNET_KEY": {"name": "airflow-keys", "key": "fernet-key"},
        "AIRFLOW__API__SECRET_KEY": {"name": "airflow-keys", "key": "api-secret-key"},
        "AIRFLOW__API_AUTH__JWT_SECRET": {"name": "airflow-keys", "key": "jwt-secret"},
    }


def test_configuration_options_become_airflow_variables(eks) -> None:
    env = airflow_env(eks, "worker")
    assert env["AIRFLOW__CORE__DEFAULT_TASK_RETRIES"] == "2"
    assert env["AIRFLOW__CORE__PARALLELISM"] == "64"
    assert env["AIRFLOW__WEBSERVER__DEFAULT_UI_TIMEZONE"] == "Europe/Paris"


def test_options_override_mwaa_defaults_without_duplicates(render) -> None:
    rendering = render({"airflowConfigurationOptions": {"core.dagbag_import_timeout": "90"}})
    c = container(rendering.one("Deployment", "scheduler"), "scheduler")
    assert env_values(c)["AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT"] == "90"  # env_of checks duplicates


def test_log_levels_per_mwaa_log_type(eks) -> None:
    levels = {
        component: airflow_env(eks, component)["AIRFLOW__LOGGING__LOGGING_LEVEL"]
        for component in ("scheduler", "dag-processor", "api-server", "worker")
    }
    assert levels == {
        "scheduler": "INFO",
        "dag-processor": "WARNING",
        "api-server": "WARNING",
        "worker": "INFO",
    }


def test_task_logs_go_to_cloudwatch(eks, default) -> None:
    env = airflow_env(eks, "worker")
    assert env["AIRFLOW__LOGGING__REMOTE_LOGGING"] == "True"
    assert env["AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER"] == (
        "cloudwatch://arn:aws:logs:eu-west-1:123456789012:log-group:airflow-analytics-prod-Task"
    )
    annotations = eks.one("Deployment", "scheduler")["spec"]["template"]["metadata"]["annotations"]
    assert (
        annotations["airflow-platform.io/cloudwatch-log-group"]
        == "airflow-analytics-prod-Scheduler"
    )
    assert airflow_env(default, "worker")["AIRFLOW__LOGGING__REMOTE_LOGGING"] == "False"


def test_statsd_metrics_go_to_the_node(default) -> None:
    env = env_of(container(default.one("Deployment", "scheduler"), "scheduler"))
    assert env["AIRFLOW__METRICS__STATSD_ON"]["value"] == "True"
    assert env["AIRFLOW__METRICS__STATSD_HOST"]["valueFrom"] == {
        "fieldRef": {"fieldPath": "status.hostIP"}
    }
    assert env["AIRFLOW__METRICS__STATSD_PORT"]["value"] == "8125"


def test_aws_secrets_manager_backend_skips_aws_default(eks) -> None:
    env = airflow_env(eks, "worker")
    assert env["AIRFLOW__SECRETS__BACKEND"] == (
        "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend"
    )
    kwargs = json.loads(env["AIRFLOW__SECRETS__BACKEND_KWARGS"])
    assert kwargs["connections_prefix"] == "airflow/connections"
    assert kwargs["region_name"] == "eu-west-1"
    pattern = re.compile(kwargs["connections_lookup_pattern"])
    assert not pattern.match("aws_default")
    assert pattern.match("aws_default_2") and pattern.match("snowflake")


def test_vault_backend(render) -> None:
    env = airflow_env(render(files=("vault-values.yaml",)), "scheduler")
    assert (
        env["AIRFLOW__SECRETS__BACKEND"] == "airflow.providers.hashicorp.secrets.vault.VaultBackend"
    )
    kwargs = json.loads(env["AIRFLOW__SECRETS__BACKEND_KWARGS"])
    assert kwargs["url"] == "https://vault.vault.svc:8200"
    assert kwargs["auth_type"] == "kubernetes"
    assert kwargs["kubernetes_role"] == "airflow"
    assert kwargs["kubernetes_jwt_path"] == "/var/run/secrets/vault/token"
    assert kwargs["mount_point"] == "airflow"


def test_no_secrets_backend_by_default(default) -> None:
    assert "AIRFLOW__SECRETS__BACKEND" not in airflow_env(default, "worker")


def test_environment_changes_roll_the_pods(render) -> None:
    def checksum(rendering):
        meta = rendering.one("Deployment", "worker")["spec"]["template"]["metadata"]
        return meta["annotations"]["airflow-platform.io/environment-checksum"]

    base = render()
    assert checksum(base) == checksum(render({"tags": {}}))  # same values, fresh render
    assert checksum(base) != checksum(
        render({"airflowConfigurationOptions": {"core.parallelism": "8"}})
    )


def test_base_url_follows_the_ingress_host(eks, default) -> None:
    assert airflow_env(eks, "api-server")["AIRFLOW__API__BASE_URL"] == (
        "https://airflow.analytics.example.com"
    )
    assert "AIRFLOW__API__BASE_URL" not in airflow_env(default, "api-server")


def test_auth_manager_is_configurable(render, default) -> None:
    aws = {"manager": "aws", "aws": {"avpPolicyStoreId": "ps-1", "samlMetadataUrl": "https://x"}}
    env = airflow_env(render({"auth": aws}), "api-server")
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith(".AwsAuthManager")
    assert "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS" not in env
    assert airflow_env(default, "api-server")["AIRFLOW__CORE__AUTH_MANAGER"].endswith(
        ".FabAuthManager"
    )


def test_credential_options_come_from_secrets_never_as_values(render) -> None:
    rendering = render(
        {
            "airflowConfigurationOptions": {
                "smtp.smtp_host": "smtp.example",
                "smtp.smtp_user": "a",
            },
            "airflowConfigurationSecrets": {
                "smtp.smtp_password": {"secretName": "airflow-smtp", "key": "password"},
                "sentry.sentry_dsn": {"secretName": "airflow-sentry", "key": "dsn"},
            },
        }
    )
    for component in AIRFLOW_COMPONENTS:
        env = env_of(container(rendering.one("Deployment", component), component))
        assert env["AIRFLOW__SMTP__SMTP_PASSWORD"] == {
            "name": "AIRFLOW__SMTP__SMTP_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "airflow-smtp", "key": "password"}},
        }
        assert env["AIRFLOW__SENTRY__SENTRY_DSN"]["valueFrom"]["secretKeyRef"] == {
            "name": "airflow-sentry",
            "key": "dsn",
        }
        assert env["AIRFLOW__SMTP__SMTP_HOST"]["value"] == "smtp.example"
    options = rendering.one("ConfigMap", "environment")["data"]["airflowConfigurationOptions"]
    assert "smtp.smtp_host: smtp.example" in options
    assert "smtp_password" not in options and "sentry_dsn" not in options


def test_a_secret_wins_over_an_option_the_chart_sets_itself(render) -> None:
    """The chart's own default for a key is dropped, not duplicated, when a Secret holds it."""
    rendering = render(
        {
            "airflowConfigurationSecrets": {
                "core.dagbag_import_timeout": {"secretName": "s", "key": "k"}
            }
        }
    )
    env = env_of(container(rendering.one("Deployment", "worker"), "worker"))  # no duplicates
    assert "value" not in env["AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT"]
    options = rendering.one("ConfigMap", "environment")["data"]["airflowConfigurationOptions"]
    assert "dagbag_import_timeout" not in options
