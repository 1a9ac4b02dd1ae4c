"""What a local process gets from its node and image rather than from the chart.

A pod's image carries its certificate authorities and its node its proxy; locally both are
the host's. Airflow's own HTTPS (boto3, requests) and the tools tasks run (pip, and uv inside
PythonVirtualenvOperator, which carries its own CA list unless told otherwise) trust what
the host trusts: behind a corporate CA, PyPI is reachable from a task as from the host.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from airflow_platform.local.translation import IMAGE_HOME, LocalContext, MappingError, PathMap
from airflow_platform.paths import DEFAULT_SYNC_ROOT, SYNC_ROOT_ENV

# The host's trust and proxy settings, inherited as they are (when the chart sets none).
CA_ENV = (
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "PIP_CERT",
    "UV_NATIVE_TLS",
    "NODE_EXTRA_CA_CERTS",
)
PROXY_ENV = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")


def host_trust(host_env: dict[str, str]) -> dict[str, str]:
    """The host's CA and proxy settings. Without a CA file of its own, uv is told to use
    the system store (its bundled list lacks any corporate CA); a proxy never carries the
    platform's own loopback traffic (moto, OpenBao, the API server)."""
    out = {k: host_env[k] for k in (*CA_ENV, *PROXY_ENV) if host_env.get(k)}
    if "SSL_CERT_FILE" not in out and "UV_NATIVE_TLS" not in out:
        out["UV_NATIVE_TLS"] = "1"
    if any(k in out for k in PROXY_ENV[:4]):
        for key in ("NO_PROXY", "no_proxy"):
            hosts = [h for h in out.get(key, "").split(",") if h]
            out[key] = ",".join(dict.fromkeys([*hosts, *LOOPBACK_HOSTS]))
    return out


def local_environment(
    ctx: LocalContext, env: dict[str, str], paths: PathMap, notes: list[str]
) -> dict[str, str]:
    """What a pod gets from its node and image rather than from the chart."""
    venv_bin = str(Path(sys.executable).parent)
    local: dict[str, str] = {
        "PATH": f"{venv_bin}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(ctx.state.airflow_home),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "AWS_ENDPOINT_URL": ctx.moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    local.setdefault("AWS_REGION", env.get("AWS_REGION", ctx.region))
    local.setdefault("AWS_DEFAULT_REGION", env.get("AWS_DEFAULT_REGION", ctx.region))
    for key, value in host_trust(dict(os.environ)).items():
        if key not in env:  # what the chart renders (e.g. a mounted CA bundle) comes first
            local[key] = value
    # The sync root and the entrypoint's writable dirs default to container paths.
    for key, default in (
        (SYNC_ROOT_ENV, str(DEFAULT_SYNC_ROOT)),
        ("AIRFLOW_PLATFORM_PACKAGES_DIR", f"{IMAGE_HOME}/packages"),
        ("AIRFLOW_PLATFORM_WHEEL_CACHE", f"{IMAGE_HOME}/wheel-cache"),
        ("AIRFLOW_HOME", IMAGE_HOME),
    ):
        if key not in env:
            local[key] = paths.apply(default)
    vault_token_auth(ctx, env, local, notes)
    return local


def vault_token_auth(
    ctx: LocalContext, env: dict[str, str], local: dict[str, str], notes: list[str]
) -> None:
    """A cluster authenticates to Vault with its service account; there is none here,
    so the backend keeps its paths and gets the dev server's token instead."""
    raw = env.get("AIRFLOW__SECRETS__BACKEND_KWARGS")
    if not raw or "vault" not in env.get("AIRFLOW__SECRETS__BACKEND", "").lower():
        return
    try:
        kwargs = json.loads(raw)
    except ValueError as exc:
        raise MappingError(f"AIRFLOW__SECRETS__BACKEND_KWARGS is not JSON: {exc}") from exc
    for key in list(kwargs):
        if key.startswith("kubernetes_") or key in ("role_id", "secret_id", "auth_mount_point"):
            kwargs.pop(key)
    kwargs.update(url=ctx.vault_url, auth_type="token", token=ctx.vault_token)
    local["AIRFLOW__SECRETS__BACKEND_KWARGS"] = json.dumps(kwargs)
    notes.append("vault: token auth against the dev server")
