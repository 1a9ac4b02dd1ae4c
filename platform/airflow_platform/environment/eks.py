"""What a self-hosted environment needs beyond MWAA's fields: the `Eks` section of a spec
(namespace, IRSA roles, the Aurora and SQS endpoints, the Secrets, ingress and sign-in)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from airflow_platform.environment.problems import Problem
from airflow_platform.environment.spec_fields import (
    AcmArn,
    IssuerUrl,
    Namespace,
    QueueUrl,
    Region,
    RoleArn,
    SecretKey,
    SecretName,
    Spec,
    cidrs,
    to_snake,
)

OnFailure = Literal["fail", "continue"]
AuthManager = Literal["fab", "aws"]
AirflowRole = Literal["Admin", "Op", "User", "Viewer", "Public"]


class SecretRef(Spec):
    """An existing Kubernetes Secret and the key inside it."""

    secret_name: SecretName
    key: SecretKey


class DatabaseSecretRef(SecretRef):
    key: SecretKey = "connection"


class PlatformSecrets(Spec):
    fernet_key: SecretRef | None = None
    api_secret_key: SecretRef | None = None
    jwt_secret: SecretRef | None = None


class ComponentRoles(Spec):
    """Per-component IRSA roles; each falls back to ExecutionRoleArn."""

    scheduler: RoleArn | None = None
    dag_processor: RoleArn | None = None
    triggerer: RoleArn | None = None
    worker: RoleArn | None = None
    api_server: RoleArn | None = None


class Image(Spec):
    repository: str
    tag: str


class Ingress(Spec):
    host: str | None = None
    certificate_arn: AcmArn | None = None
    inbound_cidrs: Annotated[list[str], cidrs("203.0.113.0/24")] = Field(default_factory=list)


class OidcSettings(Spec):
    """OpenID Connect sign-in (auth manager fab): the provider, the client, group -> roles."""

    issuer_url: IssuerUrl
    client_id: str
    client_secret: SecretRef
    scopes: list[str] = Field(default_factory=lambda: ["openid", "email", "profile"])
    username_claim: str = "preferred_username"
    groups_claim: str = "groups"
    role_mapping: dict[str, list[AirflowRole]] = Field(default_factory=dict)
    default_role: AirflowRole = "Public"

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: list[str]) -> list[str]:
        if "openid" not in value:
            raise ValueError("must include openid (an OpenID Connect request)")
        return value


class AwsAuthSettings(Spec):
    """AWS IAM Identity Center with Amazon Verified Permissions (auth manager aws)."""

    avp_policy_store_id: str
    saml_metadata_url: str
    region_name: str | None = None
    conn_id: str = "aws_default"


class AuthSettings(Spec):
    """Who signs in and with which role: MWAA's roles Admin, Op, User, Viewer, Public."""

    manager: AuthManager = "fab"
    oidc: OidcSettings | None = None
    aws: AwsAuthSettings | None = None


class EksSettings(Spec):
    """What a self-hosted environment needs beyond MWAA's fields."""

    namespace: Namespace
    region: Region
    service_account_role_arns: ComponentRoles = Field(default_factory=ComponentRoles)
    database_secret: DatabaseSecretRef | None = None
    # The Celery result backend's own role (the workers' only database access).
    result_backend_secret: DatabaseSecretRef | None = None
    # The database subnets: the chart's NetworkPolicies let pods reach the database there only.
    database_cidrs: Annotated[list[str], cidrs("10.0.16.0/20")] | None = None
    keda_database_secret: DatabaseSecretRef | None = None
    celery_queue_url: QueueUrl | None = None
    dag_event_queue_url: QueueUrl | None = None
    secrets: PlatformSecrets = Field(default_factory=PlatformSecrets)
    image: Image | None = None
    ingress: Ingress = Field(default_factory=Ingress)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    requirements_on_failure: OnFailure = "fail"
    # Airflow options whose value is a credential, read from existing Secrets.
    configuration_secrets: dict[str, SecretRef] | None = None

    def missing_for_deploy(self) -> list[Problem]:
        """Settings an imported spec may still lack but a running environment needs."""
        missing: list[Problem] = []
        if self.database_secret is None:
            missing.append(
                Problem(
                    "Eks.DatabaseSecret",
                    "not set; name the Secret holding the Aurora PostgreSQL SQLAlchemy URL "
                    "(SecretName, Key)",
                )
            )
        if self.result_backend_secret is None:
            missing.append(
                Problem(
                    "Eks.ResultBackendSecret",
                    "not set; name the Secret holding the URL of the Celery result backend's "
                    "own role (SecretName, Key), the workers' only database access",
                )
            )
        if not self.database_cidrs:
            missing.append(
                Problem(
                    "Eks.DatabaseCidrs",
                    "not set; give the CIDRs of the database subnets (the NetworkPolicies let "
                    "pods reach the database there only)",
                )
            )
        if self.celery_queue_url is None:
            missing.append(
                Problem("Eks.CeleryQueueUrl", "not set; give the SQS queue URL Celery uses")
            )
        if self.auth.manager == "fab" and self.auth.oidc is None:
            missing.append(
                Problem(
                    "Eks.Auth.Oidc",
                    "not set; give the OpenID Connect provider (IssuerUrl, ClientId, "
                    "ClientSecret, RoleMapping), or choose Eks.Auth.Manager aws",
                )
            )
        if self.auth.manager == "aws" and self.auth.aws is None:
            missing.append(
                Problem(
                    "Eks.Auth.Aws",
                    "not set; give AvpPolicyStoreId and SamlMetadataUrl of IAM Identity Center",
                )
            )
        for field in ("FernetKey", "ApiSecretKey", "JwtSecret"):
            if getattr(self.secrets, to_snake(field)) is None:
                missing.append(
                    Problem(
                        f"Eks.Secrets.{field}",
                        "not set; name an existing Secret (SecretName, Key): the chart never "
                        "generates secrets",
                    )
                )
        return missing
