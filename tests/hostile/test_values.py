"""Hostile chart values: helm refuses each, names the value and how to fix it, renders nothing.

The schema's messages give the field's path and the form it expects (the pattern, the
allowed properties); the templates' messages (templates/_validate.tpl) give the value to
set instead.
"""

from __future__ import annotations

from typing import Any

import pytest

from .chart_render import helm_template

pytestmark = pytest.mark.chart

NEWLINE_KEY = "x\nhostPID: true"
QUOTE_BREAK = 'x"\n  privileged: true'

CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "image-repository-newline",
        {"image": {"repository": f"ecr/airflow{NEWLINE_KEY}"}},
        ["at '/image/repository'", "does not match pattern"],
    ),
    (
        "image-tag-quote-break",
        {"image": {"tag": f"1.0{QUOTE_BREAK}"}},
        ["at '/image/tag'", "does not match pattern"],
    ),
    (
        "pgbouncer-image-tag-newline",
        {"pgbouncer": {"image": {"tag": f"v1{NEWLINE_KEY}"}}},
        ["at '/pgbouncer/image/tag'", "does not match pattern"],
    ),
    (
        "pgbouncer-image-repository-document",
        {"pgbouncer": {"image": {"repository": "x\n---\nkind: Pod"}}},
        ["at '/pgbouncer/image/repository'", "does not match pattern"],
    ),
    (
        "vault-url-port-breaks-the-flow-map",
        {"secretsBackend": {"vault": {"url": "https://vault:1},hostPID:true"}}},
        ["at '/secretsBackend/vault/url'", "does not match pattern"],
    ),
    (
        "ingress-host-newline",
        {"ingress": {"host": f"airflow.example.com{NEWLINE_KEY}"}},
        ["at '/ingress/host'", "does not match pattern"],
    ),
    (
        "ingress-class-template",
        {"ingress": {"className": "{{ .Release.Name }}"}},
        ["at '/ingress/className'", "does not match pattern"],
    ),
    (
        "simple-auth-users-extra-admin",
        {"auth": {"manager": "simple", "simple": {"users": "admin:admin\nintruder:admin"}}},
        ["at '/auth/simple/users'", "does not match pattern"],
    ),
    (
        "sqs-queue-url-newline",
        {
            "celery": {
                "sqsQueueUrl": f"https://sqs.us-east-1.amazonaws.com/123456789012/q{NEWLINE_KEY}"
            }
        },
        ["at '/celery/sqsQueueUrl'", "does not match pattern"],
    ),
    (
        "role-arn-newline",
        {
            "workers": {
                "serviceAccount": {"roleArn": f"arn:aws:iam::123456789012:role/w{NEWLINE_KEY}"}
            }
        },
        ["at '/workers/serviceAccount/roleArn'", "does not match pattern"],
    ),
    (
        "resource-quantity-injection",
        {"scheduler": {"resources": {"limits": {"memory": f"1Gi{NEWLINE_KEY}"}}}},
        ["/scheduler/resources/limits/memory"],
    ),
    (
        "database-cidr-injection",
        {"networkPolicy": {"database": {"cidrs": [f"10.0.0.0/8{NEWLINE_KEY}"]}}},
        ["at '/networkPolicy/database/cidrs/0'", "does not match pattern"],
    ),
    (
        "image-pull-secret-name-newline",
        {"imagePullSecrets": [{"name": f"regcred{NEWLINE_KEY}"}]},
        ["at '/imagePullSecrets/0/name'", "does not match pattern"],
    ),
    (
        "host-pid-as-a-value",
        {"hostPID": True},
        ["additional properties 'hostPID' not allowed"],
    ),
    (
        "host-network-under-a-component",
        {"scheduler": {"hostNetwork": True}},
        ["at '/scheduler'", "additional properties 'hostNetwork' not allowed"],
    ),
    (
        "pod-annotation-not-a-string",
        {"apiServer": {"podAnnotations": {"x": {"privileged": True}}}},
        ["at '/apiServer/podAnnotations/x'", "want string"],
    ),
    (
        "tag-key-with-a-colon",
        {"tags": {"aws:createdBy": "me"}},
        ["at '/tags'", "additional properties 'aws:createdBy' not allowed"],
    ),
    (
        "configuration-secret-with-a-bad-secret-name",
        {
            "airflowConfigurationSecrets": {
                "smtp.smtp_password": {"secretName": "Smtp_Secret", "key": "p"}
            }
        },
        ["at '/airflowConfigurationSecrets/smtp.smtp_password/secretName'", "does not match"],
    ),
    (
        "configuration-secret-without-its-key",
        {"airflowConfigurationSecrets": {"smtp.smtp_password": {"secretName": "smtp"}}},
        ["at '/airflowConfigurationSecrets/smtp.smtp_password'", "missing property 'key'"],
    ),
    (
        "configuration-secret-for-an-owned-key",
        {"airflowConfigurationSecrets": {"core.fernet_key": {"secretName": "keys", "key": "f"}}},
        [
            'airflowConfigurationSecrets["core.fernet_key"] is owned by the platform',
            "set secrets.fernetKey",
        ],
    ),
    (
        "option-set-twice",
        {
            "airflowConfigurationOptions": {"smtp.smtp_user": "airflow"},
            "airflowConfigurationSecrets": {"smtp.smtp_user": {"secretName": "smtp", "key": "u"}},
        },
        ['airflowConfigurationOptions["smtp.smtp_user"]', "in one of them only"],
    ),
]


def test_the_base_values_render(helm_bin: str) -> None:
    """Every refusal below comes from its hostile value: the values under it render."""
    run = helm_template(helm_bin, {})
    assert not run.refused, run.stderr
    assert any(obj["kind"] == "Deployment" for obj in run.objects())


@pytest.mark.parametrize(("values", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_value_is_refused_and_nothing_is_rendered(
    helm_bin: str, values: dict[str, Any], expected: list[str]
) -> None:
    run = helm_template(helm_bin, values)
    assert run.refused, "helm rendered a hostile value"
    assert run.stdout == "", "a refused install printed manifests"
    for fragment in expected:
        assert fragment in run.stderr, run.stderr
