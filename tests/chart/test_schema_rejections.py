"""Bad values are refused by helm itself, with a message that names the field.

values.schema.json catches what a schema can (ranges, enums, unknown keys, patterns,
lengths); the templates catch comparisons between fields, rules that depend on the
environment class, and the Airflow options users may not set (files/config-rules.json), with
the value to set instead.
"""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import HelmError

pytestmark = pytest.mark.chart

CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("six schedulers", {"scheduler": {"replicas": 6}}, ["/scheduler/replicas", "maximum"]),
    (
        "one scheduler outside mw1.micro",
        {"scheduler": {"replicas": 1}},
        ["scheduler.replicas=1", "mw1.micro"],
    ),
    ("unknown top-level key", {"schedulers": 3}, ["additional properties 'schedulers'"]),
    ("unknown nested key", {"workers": {"maxWorker": 3}}, ["/workers", "'maxWorker'"]),
    ("bad access mode", {"ingress": {"accessMode": "PUBLIC"}}, ["/ingress/accessMode"]),
    (
        "platform-owned config key",
        {"airflowConfigurationOptions": {"core.executor": "LocalExecutor"}},
        ['airflowConfigurationOptions["core.executor"] is owned by the platform', "remove it"],
    ),
    (
        "another platform-owned config key",
        {"airflowConfigurationOptions": {"celery.worker_enable_remote_control": "True"}},
        [
            'airflowConfigurationOptions["celery.worker_enable_remote_control"] is owned',
            "remove it",
        ],
    ),
    (
        "config key not section.key",
        {"airflowConfigurationOptions": {"Core.Parallelism": "32"}},
        ["/airflowConfigurationOptions", "'Core.Parallelism'"],
    ),
    (
        "config key with two dots",
        {"airflowConfigurationOptions": {"core.x.y": "1"}},
        ["/airflowConfigurationOptions", "'core.x.y'"],
    ),
    (
        "config value too long",
        {"airflowConfigurationOptions": {"core.parallelism": "9" * 65537}},
        ["/airflowConfigurationOptions/core.parallelism", "maxLength"],
    ),
    (
        "config value not a string",
        {"airflowConfigurationOptions": {"core.parallelism": 32}},
        ["/airflowConfigurationOptions/core.parallelism", "want string"],
    ),
    ("negative min workers", {"workers": {"minWorkers": -1}}, ["/workers/minWorkers"]),
    ("zero max workers", {"workers": {"maxWorkers": 0}}, ["/workers/maxWorkers"]),
    (
        "min workers above max workers",
        {"workers": {"minWorkers": 5, "maxWorkers": 3}},
        ["workers.minWorkers (5) is greater than workers.maxWorkers (3)"],
    ),
    (
        "api server min above max",
        {"apiServer": {"minReplicas": 4, "maxReplicas": 3}},
        ["apiServer.minReplicas (4) is greater than apiServer.maxReplicas (3)"],
    ),
    ("bad environment class", {"environmentClass": "mw1.huge"}, ["/environmentClass"]),
    (
        "bad replacement strategy",
        {"workers": {"replacementStrategy": "DRAIN"}},
        ["/workers/replacementStrategy"],
    ),
    ("environment name too long", {"environmentName": "a" * 81}, ["/environmentName", "maxLength"]),
    ("bad secrets backend type", {"secretsBackend": {"type": "ssm"}}, ["/secretsBackend/type"]),
    ("bad migrations mode", {"migrations": {"mode": "flux"}}, ["/migrations/mode"]),
    (
        "bad certificate ARN",
        {"ingress": {"certificateArn": "arn:aws:iam::123:cert"}},
        ["/ingress/certificateArn"],
    ),
    ("bad SQS URL", {"celery": {"sqsQueueUrl": "sqs://queue"}}, ["/celery/sqsQueueUrl"]),
    ("bad bucket name", {"dags": {"s3": {"bucket": "My_Bucket"}}}, ["/dags/s3/bucket"]),
    (
        "visibility timeout above SQS maximum",
        {"celery": {"visibilityTimeout": 50000}},
        ["/celery/visibilityTimeout"],
    ),
    ("bad log level", {"logging": {"task": {"level": "TRACE"}}}, ["/logging/task/level"]),
    ("dag processors zero", {"dagProcessor": {"replicas": 0}}, ["/dagProcessor/replicas"]),
    (
        "bad maintenance window",
        {"weeklyMaintenanceWindowStart": "SUNDAY 3am"},
        ["/weeklyMaintenanceWindowStart"],
    ),
    (
        "bad vault KV version",
        {"secretsBackend": {"vault": {"kvEngineVersion": 3}}},
        ["kvEngineVersion"],
    ),
    ("bad role ARN", {"executionRoleArn": "role/airflow"}, ["/executionRoleArn"]),
    (
        "missing database Secret",
        {"database": {"existingSecret": ""}},
        ["database.existingSecret is required"],
    ),
    (
        "missing Fernet key Secret",
        {"secrets": {"fernetKey": {"secretName": ""}}},
        ["secrets.fernetKey.secretName is required"],
    ),
    (
        "vault without address",
        {"secretsBackend": {"type": "vault", "vault": {"role": "airflow"}}},
        ["secretsBackend.vault.url is required"],
    ),
    (
        "pgbouncer without its connection Secret",
        {"pgbouncer": {"enabled": True}},
        ["pgbouncer.connectionSecret.secretName is required"],
    ),
    (
        "cloudwatch without an account",
        {"logging": {"cloudwatch": {"enabled": True}}},
        ["logging.cloudwatch.enabled", "aws.accountId"],
    ),
]


@pytest.mark.parametrize(("values", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_helm_refuses_bad_values_naming_the_field(render, values, expected) -> None:
    with pytest.raises(HelmError) as refused:
        render(values)
    message = refused.value.stderr
    for fragment in expected:
        assert fragment in message, message


def test_each_kind_of_rule_refuses_its_own_value(render) -> None:
    """The schema (ranges, enums, unknown keys, patterns, lengths) and the templates
    (comparisons, required fields, platform-owned options) each refuse, and every refusal
    names the value it refused."""
    by_kind = {
        "range": ({"workers": {"maxWorkers": 0}}, "/workers/maxWorkers"),
        "enum": ({"ingress": {"accessMode": "PUBLIC"}}, "/ingress/accessMode"),
        "unknown key": ({"schedulers": 3}, "'schedulers'"),
        "pattern": ({"dags": {"s3": {"bucket": "My_Bucket"}}}, "/dags/s3/bucket"),
        "length": ({"environmentName": "a" * 81}, "/environmentName"),
        "comparison": ({"workers": {"minWorkers": 5, "maxWorkers": 3}}, "workers.minWorkers (5)"),
        "required": ({"database": {"existingSecret": ""}}, "database.existingSecret is required"),
        "owned option": (
            {"airflowConfigurationOptions": {"core.fernet_key": "x"}},
            'airflowConfigurationOptions["core.fernet_key"]',
        ),
    }
    for kind, (values, named) in by_kind.items():
        with pytest.raises(HelmError) as refused:
            render(values)
        assert named in refused.value.stderr, f"{kind}: {refused.value.stderr}"
    assert render().one("Deployment", "scheduler")  # the same base values render


def test_micro_allows_one_scheduler_and_one_api_server(render) -> None:
    micro = render(files=("micro-values.yaml",))
    assert micro.one("Deployment", "scheduler")["spec"]["replicas"] == 1
    assert micro.one("HorizontalPodAutoscaler", "api-server")["spec"]["minReplicas"] == 1


def test_user_options_that_the_platform_does_not_own_are_accepted(render) -> None:
    from .conftest import container, env_values

    rendering = render({"airflowConfigurationOptions": {"core.parallelism": "64"}})
    for component in ("scheduler", "worker"):
        env = env_values(container(rendering.one("Deployment", component), component))
        assert env["AIRFLOW__CORE__PARALLELISM"] == "64"
