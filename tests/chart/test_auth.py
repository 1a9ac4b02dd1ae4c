"""Sign-in: FAB with OpenID Connect by default, AWS IAM Identity Center or SimpleAuthManager
on request, and an ALB that is private by default and HTTPS whenever it is public."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from .conftest import HelmError, container, env_of, env_values, pod_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "auth"
CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f"
FAB = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
SIMPLE = {
    "auth": {
        "manager": "simple",
        "simple": {"users": "admin:admin,ops:op", "passwordsSecret": {"name": "airflow-simple"}},
    }
}


def api_server(rendering):
    return container(rendering.one("Deployment", "api-server"), "api-server")


def webserver_config(rendering) -> dict[str, object]:
    """The rendered webserver_config.py's assignments, evaluated where they are literals."""
    source = rendering.one("ConfigMap", "auth")["data"]["webserver_config.py"]
    tree = ast.parse(source)  # it must at least be valid Python
    values: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                values[node.targets[0].id] = ast.unparse(node.value)
    return values


def refusal(render, values: dict, files: tuple[str, ...] = ("default-values.yaml",)) -> str:
    with pytest.raises(HelmError) as caught:
        render(values, files=files)
    return caught.value.stderr


# --- FAB with OpenID Connect, the default ---------------------------------------------------
def test_the_default_is_fab_with_openid_connect_behind_a_private_alb(default) -> None:
    env = env_values(api_server(default))
    assert env["AIRFLOW__CORE__AUTH_MANAGER"] == FAB
    assert env["AIRFLOW__FAB__CONFIG_FILE"] == "/opt/airflow/auth/webserver_config.py"
    assert "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS" not in env
    alb = default.one("Ingress", "api-server")["metadata"]["annotations"]
    assert alb["alb.ingress.kubernetes.io/scheme"] == "internal"


def test_webserver_config_is_fab_oauth_with_oidc_discovery(render) -> None:
    oidc = {
        "issuerUrl": "https://idp.example.com/realms/airflow/",
        "clientId": "airflow-ui",
        "scopes": ["openid", "email", "groups"],
        "groupsClaim": "cognito:groups",
        "usernameClaim": "email",
        "roleMapping": {"admins": ["Admin"], "ops": ["Op", "Viewer"]},
        "defaultRole": "Viewer",
    }
    config = webserver_config(render({"auth": {"oidc": oidc}}))
    assert config["AUTH_TYPE"] == "AUTH_OAUTH"
    assert config["SECURITY_MANAGER_CLASS"] == "OidcSecurityManager"
    (provider,) = ast.literal_eval(
        str(config["OAUTH_PROVIDERS"]).replace(
            "os.environ['AIRFLOW_PLATFORM_OIDC_CLIENT_SECRET']", "'<env>'"
        )
    )
    remote = provider["remote_app"]
    assert provider["name"] == "oidc"
    assert remote["client_id"] == "airflow-ui"
    assert remote["client_secret"] == "<env>"
    assert remote["server_metadata_url"] == (
        "https://idp.example.com/realms/airflow/.well-known/openid-configuration"
    )
    assert remote["client_kwargs"] == {
        "scope": "openid email groups",
        "code_challenge_method": "S256",
    }
    assert config["AUTH_ROLES_MAPPING"] == {"admins": ["Admin"], "ops": ["Op", "Viewer"]}
    assert config["AUTH_ROLES_SYNC_AT_LOGIN"] is True
    assert config["AUTH_USER_REGISTRATION"] is True
    assert config["AUTH_USER_REGISTRATION_ROLE"] == "Viewer"
    assert config["OIDC_DEFAULT_ROLE"] == "Viewer"
    assert config["OIDC_GROUPS_CLAIM"] == "cognito:groups"
    assert config["OIDC_USERNAME_CLAIM"] == "email"


def test_the_client_secret_reaches_only_the_api_server_and_never_the_config_map(default) -> None:
    config_map = yaml.safe_dump(default.one("ConfigMap", "auth"))
    assert "secretKeyRef" not in config_map
    entry = env_of(api_server(default))["AIRFLOW_PLATFORM_OIDC_CLIENT_SECRET"]
    assert entry["valueFrom"]["secretKeyRef"] == {"name": "airflow-oidc", "key": "client-secret"}
    for workload in default.workloads():
        if workload["metadata"]["labels"]["app.kubernetes.io/component"] == "api-server":
            continue
        for c in pod_spec(workload).get("containers", []) + pod_spec(workload).get(
            "initContainers", []
        ):
            assert "AIRFLOW_PLATFORM_OIDC_CLIENT_SECRET" not in env_of(c), c["name"]


def test_webserver_config_is_mounted_read_only_and_rolls_the_api_server(default, render) -> None:
    deployment = default.one("Deployment", "api-server")
    mount = next(m for m in api_server(default)["volumeMounts"] if m["name"] == "auth-config")
    assert mount == {"name": "auth-config", "mountPath": "/opt/airflow/auth", "readOnly": True}
    volume = next(v for v in pod_spec(deployment)["volumes"] if v["name"] == "auth-config")
    assert volume["configMap"]["name"] == default.one("ConfigMap", "auth")["metadata"]["name"]
    scheduler = default.one("Deployment", "scheduler")
    assert "auth-config" not in {v["name"] for v in pod_spec(scheduler)["volumes"]}

    def checksum(rendering) -> str:
        annotations = rendering.one("Deployment", "api-server")["spec"]["template"]["metadata"]
        return annotations["annotations"]["airflow-platform.io/auth-checksum"]

    changed = render({"auth": {"oidc": {"roleMapping": {"x": ["Admin"]}}}})
    assert checksum(changed) != checksum(default)


@pytest.mark.parametrize(
    ("missing", "field"),
    [
        ({"issuerUrl": ""}, "auth.oidc.issuerUrl"),
        ({"clientId": ""}, "auth.oidc.clientId"),
        ({"clientSecret": {"existingSecret": ""}}, "auth.oidc.clientSecret.existingSecret"),
    ],
)
def test_fab_without_its_provider_is_refused_naming_the_value(render, missing, field) -> None:
    message = refusal(render, {"auth": {"oidc": missing}})
    assert f"{field} is required with auth.manager=fab" in message


@pytest.mark.parametrize(
    "bad",
    [
        {"oidc": {"issuerUrl": "http://idp.example.com"}},  # plain HTTP off this machine
        {"oidc": {"roleMapping": {"admins": ["Superuser"]}}},  # not one of MWAA's roles
        {"oidc": {"defaultRole": "Admin "}},
        {"oidc": {"scopes": ["email"]}},  # an OpenID Connect request needs openid
        {"manager": ""},  # the former "SimpleAuthManager by default"
        {"simpleAuthManagerUsers": "admin:admin"},  # moved to auth.simple.users
    ],
)
def test_schema_refuses_bad_auth_values(render, bad) -> None:
    assert "auth" in refusal(render, {"auth": bad})


@pytest.mark.parametrize(
    "example", sorted(p.name for p in EXAMPLES.glob("*-values.yaml") if "simple" not in p.name)
)
def test_identity_provider_examples_render(render, example) -> None:
    """The README's examples (Cognito, Okta, Entra ID, Keycloak, IAM Identity Center)."""
    values = yaml.safe_load((EXAMPLES / example).read_text())
    rendering = render(files=("default-values.yaml", str(EXAMPLES / example)))
    env = env_values(api_server(rendering))
    if values["auth"]["manager"] == "fab":
        oidc = values["auth"]["oidc"]
        config = webserver_config(rendering)
        assert config["AUTH_ROLES_MAPPING"] == oidc["roleMapping"]
        assert config["OIDC_GROUPS_CLAIM"] == oidc["groupsClaim"]
        assert set(oidc["roleMapping"]) and all(
            set(roles) <= {"Admin", "Op", "User", "Viewer"}
            for roles in oidc["roleMapping"].values()
        )
    else:
        aws = values["auth"]["aws"]
        assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith(".AwsAuthManager")
        assert env["AIRFLOW__AWS_AUTH_MANAGER__AVP_POLICY_STORE_ID"] == aws["avpPolicyStoreId"]
        assert env["AIRFLOW__AWS_AUTH_MANAGER__SAML_METADATA_URL"] == aws["samlMetadataUrl"]
        assert env["AIRFLOW__AWS_AUTH_MANAGER__REGION_NAME"] == aws["regionName"]
        assert rendering.all("ConfigMap", "auth") == []


# --- AWS IAM Identity Center ------------------------------------------------------------
def test_aws_manager_needs_its_policy_store_and_saml_metadata(render) -> None:
    message = refusal(render, {"auth": {"manager": "aws"}})
    assert "auth.aws.avpPolicyStoreId is required with auth.manager=aws" in message
    aws = {"manager": "aws", "aws": {"avpPolicyStoreId": "ps-1"}}
    assert "auth.aws.samlMetadataUrl is required" in refusal(render, {"auth": aws})


def test_aws_manager_region_defaults_to_the_environment_region(render) -> None:
    aws = {"manager": "aws", "aws": {"avpPolicyStoreId": "ps-1", "samlMetadataUrl": "https://m"}}
    env = env_values(api_server(render({"auth": aws, "aws": {"region": "eu-west-1"}})))
    assert env["AIRFLOW__AWS_AUTH_MANAGER__REGION_NAME"] == "eu-west-1"
    assert env["AIRFLOW__AWS_AUTH_MANAGER__CONN_ID"] == "aws_default"


# --- SimpleAuthManager: explicit, private, passwords from a Secret ------------------------
def test_simple_manager_reads_every_password_from_a_secret(render) -> None:
    rendering = render(SIMPLE)
    deployment = rendering.one("Deployment", "api-server")
    env = env_values(api_server(rendering))
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith(".SimpleAuthManager")
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin,ops:op"
    passwords = env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
    copier = container(deployment, "simple-auth-passwords")
    assert copier["command"][:3] == ["airflow-platform", "auth", "simple-passwords"]
    assert copier["command"][copier["command"].index("--target") + 1] == passwords
    assert env_values(copier)["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin,ops:op"
    secret = next(v for v in pod_spec(deployment)["volumes"] if v["name"] == "simple-auth-secret")
    assert secret["secret"]["secretName"] == "airflow-simple"
    assert {m["name"]: m.get("readOnly", False) for m in copier["volumeMounts"]} == {
        "simple-auth": False,
        "simple-auth-secret": True,
    }
    assert rendering.all("ConfigMap", "auth") == []


def test_simple_manager_is_refused_without_its_secret_or_on_a_public_alb(render) -> None:
    no_secret = {"auth": {"manager": "simple"}}
    assert "auth.simple.passwordsSecret.name is required" in refusal(render, no_secret)
    public = {**SIMPLE, "ingress": {"accessMode": "PUBLIC_ONLY", "certificateArn": CERT}}
    message = refusal(render, public)
    assert "auth.manager=simple" in message and "ingress.accessMode=PRIVATE_ONLY" in message


def test_simple_example_renders(render) -> None:
    rendering = render(files=("default-values.yaml", str(EXAMPLES / "simple-values.yaml")))
    assert container(rendering.one("Deployment", "api-server"), "simple-auth-passwords")


# --- The ALB ---------------------------------------------------------------------------------
def test_public_alb_needs_https(render) -> None:
    message = refusal(render, {"ingress": {"accessMode": "PUBLIC_ONLY"}})
    assert "ingress.accessMode=PUBLIC_ONLY needs HTTPS: set ingress.certificateArn" in message


def test_public_alb_redirects_http_and_honours_inbound_cidrs(render) -> None:
    ingress = {
        "accessMode": "PUBLIC_ONLY",
        "certificateArn": CERT,
        "inboundCidrs": ["192.0.2.0/24"],
    }
    rendering = render({"ingress": ingress})
    alb = rendering.one("Ingress", "api-server")["metadata"]["annotations"]
    assert alb["alb.ingress.kubernetes.io/scheme"] == "internet-facing"
    assert alb["alb.ingress.kubernetes.io/listen-ports"] == '[{"HTTP": 80}, {"HTTPS": 443}]'
    assert alb["alb.ingress.kubernetes.io/ssl-redirect"] == "443"
    assert alb["alb.ingress.kubernetes.io/inbound-cidrs"] == "192.0.2.0/24"
    env = env_values(api_server(rendering))
    assert env["AIRFLOW__FAB__COOKIE_SECURE"] == "True"
    assert env["AIRFLOW__FAB__ENABLE_PROXY_FIX"] == "True"
