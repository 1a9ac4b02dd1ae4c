"""What the environment spec's models share: the base model (MWAA's PascalCase field names),
the patterns of AWS and Kubernetes identifiers, and the checks that name the expected form."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict
from pydantic.alias_generators import to_pascal

NAME = re.compile(r"^[a-zA-Z][0-9a-zA-Z_-]{0,79}$")
PARTITION = r"arn:aws(?:-[a-z]+)*"
BUCKET_ARN = re.compile(rf"^{PARTITION}:s3:::([a-z0-9][a-z0-9.-]{{1,61}}[a-z0-9])$")
ROLE_ARN = re.compile(rf"^{PARTITION}:iam::\d{{12}}:role/[\w+=,.@/-]{{1,512}}$")
KMS = re.compile(
    rf"^(?:(?:{PARTITION}:kms:[a-z0-9-]+:\d{{12}}:)?key/)?[a-zA-Z0-9-]+$"
    rf"|^(?:{PARTITION}:kms:[a-z0-9-]+:\d{{12}}:)?alias/[a-zA-Z0-9/_-]+$"
)
ACM = re.compile(rf"^{PARTITION}:acm:[a-z0-9-]+:\d{{12}}:certificate/[a-zA-Z0-9-]+$")
WINDOW = re.compile(r"^(MON|TUE|WED|THU|FRI|SAT|SUN):([01]\d|2[0-3]):(00|30)$")
REGION = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d$")
# AWS form https://sqs.<region>.amazonaws.com/<account>/<name>; any host is accepted so a
# local SQS endpoint works too.
QUEUE_URL = re.compile(r"^https?://[^/\s]+/\d{12}/[A-Za-z0-9_-]{1,80}(?:\.fifo)?$")
AWS_QUEUE_REGION = re.compile(r"^https://sqs\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
ISSUER = re.compile(r"^https://[^\s/]+(/\S*)?$")


class Spec(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_pascal, populate_by_name=True, extra="forbid", frozen=False
    )


def check(pattern: re.Pattern[str], value: str, what: str, example: str) -> str:
    if not pattern.match(value):
        raise ValueError(f"{value!r} is not {what}; expected something like {example}")
    return value


def check_cidrs(value: list[str], example: str) -> list[str]:
    for cidr in value:
        try:
            ipaddress.ip_network(cidr, strict=True)
        except ValueError as exc:
            raise ValueError(f"{cidr!r} is not a CIDR block ({exc}); e.g. {example}") from None
    return value


def to_snake(pascal: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", pascal).lower()


def cidrs(example: str) -> AfterValidator:
    return AfterValidator(lambda value: check_cidrs(value, example))


def _matching(pattern: re.Pattern[str], what: str, example: str) -> AfterValidator:
    return AfterValidator(lambda value: check(pattern, value, what, example))


# The identifiers a spec names, each refused with the form it expects (`X | None` for an
# optional field checks only a given value).
SecretName = Annotated[
    str, _matching(DNS_SUBDOMAIN, "a Kubernetes Secret name", "airflow-fernet-key")
]
SecretKey = Annotated[str, _matching(SECRET_KEY, "a Secret data key", "connection")]
RoleArn = Annotated[
    str,
    _matching(ROLE_ARN, "an IAM role ARN", "arn:aws:iam::123456789012:role/airflow-execution"),
]
AcmArn = Annotated[
    str,
    _matching(ACM, "an ACM certificate ARN", "arn:aws:acm:us-east-1:123456789012:certificate/…"),
]
IssuerUrl = Annotated[
    str, _matching(ISSUER, "an https issuer URL", "https://idp.example.com/realms/x")
]
Namespace = Annotated[str, _matching(DNS_LABEL, "a Kubernetes namespace name", "airflow-analytics")]
Region = Annotated[str, _matching(REGION, "an AWS region", "us-east-1")]
QueueUrl = Annotated[
    str,
    _matching(
        QUEUE_URL,
        "an SQS queue URL",
        "https://sqs.us-east-1.amazonaws.com/123456789012/airflow-celery",
    ),
]
EnvironmentName = Annotated[
    str,
    _matching(
        NAME,
        "an MWAA environment name (letter first, then letters, digits, - or _; at most 80)",
        "analytics-prod",
    ),
]
BucketArn = Annotated[
    str, _matching(BUCKET_ARN, "an S3 bucket ARN", "arn:aws:s3:::my-airflow-bucket")
]
KmsKey = Annotated[
    str,
    _matching(
        KMS,
        "a KMS key (ARN, key id or alias)",
        "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    ),
]
MaintenanceWindow = Annotated[
    str, _matching(WINDOW, "DAY:HH:MM with DAY in MON..SUN and MM 00 or 30", "SUN:03:30")
]
