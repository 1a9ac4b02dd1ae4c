"""Environment spec -> the chart's values (the layout is the chart's contract).

Only what the spec decides is written; everything else keeps the chart's defaults, so a
rendered file stays short and reviewable.
"""

from __future__ import annotations

from typing import Any

import yaml

from airflow_platform.environment.model import AuthSettings, Environment, ModuleLogging, SecretRef


def _dags_prefix(path: str) -> str:
    return path.rstrip("/") + "/"


def _service_account(role_arn: str | None) -> dict[str, Any]:
    return {"serviceAccount": {"roleArn": role_arn}} if role_arn else {}


def _secret(ref: SecretRef | None) -> dict[str, str]:
    return {"secretName": ref.secret_name, "key": ref.key} if ref else {"secretName": ""}


def _log(module: ModuleLogging) -> dict[str, Any]:
    return {"enabled": module.enabled, "level": module.log_level}


def render_values(env: Environment) -> dict[str, Any]:
    eks = env.eks
    roles = eks.service_account_role_arns
    logs = env.logging_configuration
    modules = (
        logs.dag_processing_logs,
        logs.scheduler_logs,
        logs.task_logs,
        logs.webserver_logs,
        logs.worker_logs,
    )
    values: dict[str, Any] = {
        "environmentName": env.name,
        "environmentClass": env.environment_class,
    }
    if eks.image:
        values["image"] = {"repository": eks.image.repository, "tag": eks.image.tag}
    values |= {
        "airflowConfigurationOptions": dict(env.airflow_configuration_options),
        "airflowConfigurationSecrets": {
            key: _secret(ref) for key, ref in (eks.configuration_secrets or {}).items()
        },
        "aws": {"region": eks.region},
        "executionRoleArn": env.execution_role_arn,
        "database": {
            "existingSecret": eks.database_secret.secret_name if eks.database_secret else "",
            "secretKey": eks.database_secret.key if eks.database_secret else "connection",
        },
    }
    if eks.result_backend_secret:
        values["database"]["resultBackendSecret"] = {
            "existingSecret": eks.result_backend_secret.secret_name,
            "secretKey": eks.result_backend_secret.key,
        }
    if eks.keda_database_secret:
        values["kedaDatabase"] = {
            "existingSecret": eks.keda_database_secret.secret_name,
            "secretKey": eks.keda_database_secret.key,
        }
    values |= {
        "celery": {"sqsQueueUrl": eks.celery_queue_url or ""},
        "dags": {
            "s3": {
                "bucket": env.bucket,
                "dagsPrefix": _dags_prefix(env.dag_s3_path),
                "pluginsKey": env.plugins_s3_path or "",
                "pluginsVersion": env.plugins_s3_object_version or "",
                "requirementsKey": env.requirements_s3_path or "",
                "requirementsVersion": env.requirements_s3_object_version or "",
                "startupScriptKey": env.startup_script_s3_path or "",
                "startupScriptVersion": env.startup_script_s3_object_version or "",
            },
            "sync": {"eventQueueUrl": eks.dag_event_queue_url or ""},
        },
        "requirements": {"onFailure": eks.requirements_on_failure},
        "scheduler": {"replicas": env.schedulers} | _service_account(roles.scheduler),
    }
    # dag-processor and triggerer follow the scheduler count (MWAA runs them inside each
    # scheduler), so only their roles are written.
    if roles.dag_processor:
        values["dagProcessor"] = _service_account(roles.dag_processor)
    if roles.triggerer:
        values["triggerer"] = _service_account(roles.triggerer)
    values["apiServer"] = {
        "minReplicas": env.min_webservers,
        "maxReplicas": env.max_webservers,
    } | _service_account(roles.api_server)
    ingress: dict[str, Any] = {"accessMode": env.webserver_access_mode}
    if eks.ingress.host:
        ingress["host"] = eks.ingress.host
    if eks.ingress.certificate_arn:
        ingress["certificateArn"] = eks.ingress.certificate_arn
    if eks.ingress.inbound_cidrs:
        ingress["inboundCidrs"] = list(eks.ingress.inbound_cidrs)
    values["ingress"] = ingress
    values["auth"] = _auth(eks.auth)
    values["workers"] = {
        "minWorkers": env.min_workers,
        "maxWorkers": env.max_workers,
        "replacementStrategy": env.worker_replacement_strategy,
    } | _service_account(roles.worker)
    values["logging"] = {
        "cloudwatch": {"enabled": any(module.enabled for module in modules)},
        "dagProcessing": _log(logs.dag_processing_logs),
        "scheduler": _log(logs.scheduler_logs),
        "task": _log(logs.task_logs),
        "webServer": _log(logs.webserver_logs),
        "worker": _log(logs.worker_logs),
    }
    values["secrets"] = {
        "fernetKey": _secret(eks.secrets.fernet_key),
        "apiSecretKey": _secret(eks.secrets.api_secret_key),
        "jwtSecret": _secret(eks.secrets.jwt_secret),
    }
    if eks.database_cidrs:
        values["networkPolicy"] = {"database": {"cidrs": list(eks.database_cidrs)}}
    values["kmsKey"] = env.kms_key or ""
    values["weeklyMaintenanceWindowStart"] = env.weekly_maintenance_window_start or ""
    values["tags"] = dict(env.tags)
    return values


def _auth(auth: AuthSettings) -> dict[str, Any]:
    """The chart's auth values; a provider the spec leaves out stays for helm to ask for."""
    values: dict[str, Any] = {"manager": auth.manager}
    if auth.oidc:
        o = auth.oidc
        values["oidc"] = {
            "issuerUrl": o.issuer_url,
            "clientId": o.client_id,
            "clientSecret": {
                "existingSecret": o.client_secret.secret_name,
                "key": o.client_secret.key,
            },
            "scopes": list(o.scopes),
            "usernameClaim": o.username_claim,
            "groupsClaim": o.groups_claim,
            "roleMapping": {group: list(roles) for group, roles in o.role_mapping.items()},
            "defaultRole": o.default_role,
        }
    if auth.aws:
        values["aws"] = {
            "avpPolicyStoreId": auth.aws.avp_policy_store_id,
            "samlMetadataUrl": auth.aws.saml_metadata_url,
            "regionName": auth.aws.region_name or "",
            "connId": auth.aws.conn_id,
        }
    return values


def _drop_empty_secret_names(values: dict[str, Any]) -> None:
    # A secret the spec does not name keeps the chart's default key name.
    for ref in values["secrets"].values():
        if not ref.get("secretName"):
            ref.pop("key", None)


def render_values_yaml(env: Environment) -> str:
    values = render_values(env)
    _drop_empty_secret_names(values)
    header = (
        f"# Chart values for MWAA-style environment {env.name!r} ({env.environment_class}),\n"
        f"# rendered by `airflow-platform env render`. Install into namespace "
        f"{env.eks.namespace!r}.\n"
    )
    return header + yaml.safe_dump(values, sort_keys=False, default_flow_style=False, width=1000)
