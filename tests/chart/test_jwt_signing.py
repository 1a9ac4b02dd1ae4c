"""secrets.jwtSigning: asymmetric token signing. The private key reaches the containers that
sign tokens only (scheduler, api-server, execution-api), the JWKS of trusted public keys those
that verify them only (api-server, execution-api), the JWT secret none; the default
(symmetric) rendering does not change; bad values are refused naming the field. The rendered
environment is then read by the real Airflow 3.3.2: signers sign with the mounted key, and
verifiers accept those tokens and refuse one from a key the JWKS does not hold."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_platform.ops import jwt_keys

from .conftest import HelmError, container, containers, env_of, env_values, pod_spec
from .test_airflow_reads_the_config import component_env

pytestmark = pytest.mark.chart

SIGNING = "jwt-signing-values.yaml"
PRIVATE_KEY_PATH = "AIRFLOW__API_AUTH__JWT_PRIVATE_KEY_PATH"
JWKS_URL = "AIRFLOW__API_AUTH__TRUSTED_JWKS_URL"
SIGNING_ENV = (PRIVATE_KEY_PATH, JWKS_URL, "AIRFLOW__API_AUTH__JWT_KID",
               "AIRFLOW__API_AUTH__JWT_ALGORITHM", "AIRFLOW__API_AUTH__JWT_SECRET")  # fmt: skip
SIGNERS = {"scheduler", "api-server", "execution-api"}
VERIFIERS = {"api-server", "execution-api"}
OFF = {"secrets": {"jwtSigning": {"enabled": False}}}


def holdings(rendering) -> dict[tuple[str, str], set[str]]:
    """(component, container) -> the signing env vars and key volumes it holds, every
    workload and container of the rendering (init containers included)."""
    found: dict[tuple[str, str], set[str]] = {}
    for workload in rendering.workloads():
        volumes = {v["name"]: v for v in pod_spec(workload).get("volumes", [])}
        component = workload["metadata"]["labels"]["app.kubernetes.io/component"]
        for c in containers(workload):
            held = {k for k in env_of(c) if k in SIGNING_ENV}
            for mount in c.get("volumeMounts", []):
                if mount["name"] in ("jwt-private-key", "jwt-public-keys"):
                    held.add(mount["name"])
                    assert mount["name"] in volumes
            found[(component, c["name"])] = held
    return found


def test_only_signers_hold_the_private_key_and_only_verifiers_the_jwks(render) -> None:
    held = holdings(render(files=(SIGNING,)))
    main = {(c, c) for c in ("scheduler", "dag-processor", "triggerer", "api-server",
                             "execution-api", "worker", "migrations")}  # fmt: skip
    assert main <= set(held)
    for (component, name), got in held.items():
        wanted: set[str] = set()
        if name == component and component in SIGNERS:
            wanted |= {PRIVATE_KEY_PATH, "jwt-private-key"}
        if name == component and component in VERIFIERS:
            wanted |= {JWKS_URL, "jwt-public-keys"}
        assert got == wanted, (component, name)


def test_no_pod_but_the_signers_has_the_private_key_volume(render) -> None:
    rendering = render(files=(SIGNING,))
    with_key = set()
    for workload in rendering.workloads():
        volumes = pod_spec(workload).get("volumes", [])
        names = {v["name"] for v in volumes}
        secrets = {v.get("secret", {}).get("secretName") for v in volumes}
        if "jwt-private-key" in names:
            with_key.add(workload["metadata"]["labels"]["app.kubernetes.io/component"])
        else:
            assert "airflow-jwt-signing-1" not in secrets
    assert with_key == SIGNERS


def test_the_key_files_come_from_the_named_objects(render) -> None:
    api = render(files=(SIGNING,)).one("Deployment", "api-server")
    volumes = {v["name"]: v for v in pod_spec(api)["volumes"]}
    assert volumes["jwt-private-key"]["secret"] == {
        "secretName": "airflow-jwt-signing-1",
        "defaultMode": 0o440,
        "items": [{"key": "private-key.pem", "path": "private-key.pem"}],
    }
    assert volumes["jwt-public-keys"]["configMap"] == {
        "name": "airflow-jwks",
        "defaultMode": 0o444,
        "items": [{"key": "jwks.json", "path": "jwks.json"}],
    }
    env = env_values(container(api, "api-server"))
    assert env[PRIVATE_KEY_PATH] == "/opt/airflow/jwt/signing/private-key.pem"
    assert env[JWKS_URL] == "/opt/airflow/jwt/trusted/jwks.json"
    mounts = {m["name"]: m for m in container(api, "api-server")["volumeMounts"]}
    assert mounts["jwt-private-key"]["mountPath"] == "/opt/airflow/jwt/signing"
    assert mounts["jwt-public-keys"]["mountPath"] == "/opt/airflow/jwt/trusted"
    assert mounts["jwt-private-key"]["readOnly"] and mounts["jwt-public-keys"]["readOnly"]


def test_a_jwks_in_a_secret_and_other_keys(render) -> None:
    values = {"secrets": {"jwtSigning": {
        "privateKey": {"key": "tls.key"},
        "publicKeys": {"kind": "Secret", "name": "airflow-jwks-secret", "key": "keys.json"},
    }}}  # fmt: skip
    execution = render(values, files=(SIGNING,)).one("Deployment", "execution-api")
    volumes = {v["name"]: v for v in pod_spec(execution)["volumes"]}
    assert volumes["jwt-public-keys"]["secret"] == {
        "secretName": "airflow-jwks-secret",
        "defaultMode": 0o444,
        "items": [{"key": "keys.json", "path": "jwks.json"}],
    }
    assert "configMap" not in volumes["jwt-public-keys"]
    assert volumes["jwt-private-key"]["secret"]["items"] == [
        {"key": "tls.key", "path": "private-key.pem"}
    ]


def test_kid_and_algorithm_reach_who_signs_and_who_verifies(render) -> None:
    values = {"secrets": {"jwtSigning": {"kid": "airflow-2026-12", "algorithm": "RS256"}}}
    rendering = render(values, files=(SIGNING,))
    for component in ("scheduler", "api-server", "execution-api", "worker", "triggerer"):
        env = env_values(container(rendering.one("Deployment", component), component))
        signs, verifies = component in SIGNERS, component in VERIFIERS
        assert env.get("AIRFLOW__API_AUTH__JWT_KID") == ("airflow-2026-12" if signs else None)
        assert env.get("AIRFLOW__API_AUTH__JWT_ALGORITHM") == (
            "RS256" if signs or verifies else None
        )
    # Unset, Airflow derives both from the key: nothing rendered.
    env = env_of(container(render(files=(SIGNING,)).one("Deployment", "scheduler"), "scheduler"))
    assert "AIRFLOW__API_AUTH__JWT_KID" not in env and "AIRFLOW__API_AUTH__JWT_ALGORITHM" not in env


def test_the_default_stays_symmetric(default) -> None:
    held = holdings(default)
    for (component, name), got in held.items():
        signer = name == component and component in SIGNERS
        wanted = {"AIRFLOW__API_AUTH__JWT_SECRET"} if signer else set()
        assert got == wanted, (component, name)
    for workload in default.workloads():
        names = {v["name"] for v in pod_spec(workload).get("volumes", [])}
        assert not names & {"jwt-private-key", "jwt-public-keys"}


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"secrets": {"jwtSigning": {"privateKey": {"secretName": ""}}}},
         "secrets.jwtSigning.privateKey.secretName is required"),
        ({"secrets": {"jwtSigning": {"publicKeys": {"name": ""}}}},
         "secrets.jwtSigning.publicKeys.name is required"),
        ({"secrets": {"jwtSecret": {"secretName": "airflow-keys"}}},
         "secrets.jwtSecret.secretName=\"airflow-keys\" and secrets.jwtSigning.enabled=true"),
        ({"secrets": {"jwtSigning": {"publicKeys": {"kind": "Volume"}}}},
         "/secrets/jwtSigning/publicKeys/kind"),
        ({"secrets": {"jwtSigning": {"algorithm": "HS512"}}}, "/secrets/jwtSigning/algorithm"),
        ({"secrets": {"jwtSigning": {"kid": "a b"}}}, "/secrets/jwtSigning/kid"),
        ({"secrets": {"jwtSigning": {"privateKey": {"key": "../etc"}}}},
         "/secrets/jwtSigning/privateKey/key"),
        ({"secrets": {"jwtSigning": {"keys": "x"}}}, "jwtSigning"),
    ],
)  # fmt: skip
def test_bad_signing_values_are_refused_naming_the_field(render, values, named) -> None:
    with pytest.raises(HelmError) as refused:
        render(values, files=(SIGNING,))
    assert named in refused.value.stderr


def test_without_signing_the_jwt_secret_stays_required(render) -> None:
    with pytest.raises(HelmError) as refused:
        render({**OFF, "secrets": {**OFF["secrets"], "jwtSecret": {"secretName": ""}}})
    assert "secrets.jwtSecret.secretName is required" in refused.value.stderr
    assert "secrets.jwtSigning" in refused.value.stderr


def test_the_fix_names_the_missing_private_key_secret(render) -> None:
    with pytest.raises(HelmError) as refused:
        render({"secrets": {"jwtSigning": {"privateKey": {"secretName": ""}}}}, files=(SIGNING,))
    assert "set it to an existing Secret holding the current private key" in refused.value.stderr


PROBE = r"""
import json, sys
from airflow.api_fastapi.auth.tokens import (
    JWTGenerator, JWTValidator, get_sig_validation_args, get_signing_args)
step = sys.argv[1]
if step == "sign":
    args = get_signing_args(make_secret_key_if_needed=False)
    assert set(args) == {"private_key"}, args
    print(JWTGenerator(**args, valid_for=60, audience="probe").generate({"sub": "ti"}))
else:
    args = get_sig_validation_args(make_secret_key_if_needed=False)
    validator = JWTValidator(**args, audience="probe")
    out = {"jwks": getattr(args.get("jwks"), "url", None)}
    for line in sys.stdin.read().split():
        try:
            out.setdefault("ok", []).append(validator.validated_claims(line)["sub"])
        except Exception as exc:
            out.setdefault("refused", []).append(type(exc).__name__)
    print(json.dumps(out))
"""


def run_probe(env: dict[str, str], step: str, tokens: str = "") -> str:
    done = subprocess.run([sys.executable, "-c", PROBE, step], env=env, input=tokens,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def test_airflow_signs_and_verifies_with_the_rendered_files(render, tmp_path) -> None:
    """The rendered env with its mount paths pointing at real files: the scheduler signs with
    the private key, the execution API accepts that token and refuses one of an untrusted key."""
    rendering = render(files=(SIGNING,))
    trusted, stranger = jwt_keys.new_private_key(), jwt_keys.new_private_key()
    files = {"signing": tmp_path / "signing", "trusted": tmp_path / "trusted"}
    for path in files.values():
        path.mkdir()
    jwt_keys.write_private_key(files["signing"] / "private-key.pem", trusted)
    jwks = jwt_keys.edit_jwks(None, [jwt_keys.public_jwk(trusted)], [])
    (files["trusted"] / "jwks.json").write_text(json.dumps(jwks))
    jwt_keys.write_private_key(tmp_path / "stranger.pem", stranger)

    def env_for(component: str, key: Path | None = None) -> dict[str, str]:
        env = component_env(rendering, component, tmp_path / component)
        for name, value in env.items():
            for part, path in files.items():
                env[name] = value = value.replace(f"/opt/airflow/jwt/{part}", str(path))
        if key:
            env[PRIVATE_KEY_PATH] = str(key)
        return env

    token = run_probe(env_for("scheduler"), "sign")
    forged = run_probe(env_for("scheduler", tmp_path / "stranger.pem"), "sign")
    checked = json.loads(run_probe(env_for("execution-api"), "check", f"{token}\n{forged}"))
    assert checked == {
        "jwks": str(files["trusted"] / "jwks.json"),
        "ok": ["ti"],
        "refused": ["InvalidTokenError"],  # its kid is in no trusted key
    }
