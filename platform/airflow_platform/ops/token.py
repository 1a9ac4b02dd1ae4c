"""`ops token`: a REST API token from the API server's `/auth/token` (username and
password, JSON). Airflow 3's SimpleAuthManager and the FAB auth manager both serve it; the
token's lifetime is the server's `[api_auth] jwt_expiration_time`."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from airflow_platform.ops.errors import OpsError


@dataclass
class Token:
    access_token: str
    expires_at: str | None


def expiry(token: str) -> str | None:
    """The `exp` claim of a JWT (read, not verified: only the server can verify it)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return datetime.fromtimestamp(int(claims["exp"]), UTC).isoformat()
    except (IndexError, KeyError, ValueError, TypeError):
        return None


def _answer(status: int, body: Any, where: str, username: str) -> Token:
    if status in (200, 201) and isinstance(body, dict) and body.get("access_token"):
        return Token(body["access_token"], expiry(body["access_token"]))
    if status in (401, 403):
        raise OpsError(f"{where}: login as {username!r} refused ({status}): check the user "
                       "and password (--username, AIRFLOW_PLATFORM_API_PASSWORD)")  # fmt: skip
    if status == 404 or status == 405:
        raise OpsError(f"{where}: no /auth/token endpoint ({status}); the configured auth "
                       "manager must be SimpleAuthManager or FAB (password login)")  # fmt: skip
    raise OpsError(f"{where}: /auth/token answered {status}: {str(body)[:300]}")


def token_from_url(api_url: str, username: str, password: str) -> Token:
    from airflow_platform.local.http import request

    url = api_url.rstrip("/") + "/auth/token"
    try:
        status, body = request("POST", url, {"username": username, "password": password})
    except OSError as exc:
        raise OpsError(f"cannot reach {url}: {exc}. Check --api-url") from None
    return _answer(status, body, url, username)


def token_through_cluster(kube: Any, username: str, password: str) -> Token:
    """POST /auth/token through the Kubernetes API server's proxy to the api-server Service."""
    from kubernetes.client.exceptions import ApiException

    from airflow_platform.ops.kube import COMPONENT_LABEL

    services = kube.call(
        kube.core.list_namespaced_service,
        kube.target.namespace,
        label_selector=f"{kube.target.selector},{COMPONENT_LABEL}=api-server",
    ).items
    if not services:
        raise OpsError(f"release {kube.target.release!r} has no api-server Service")
    svc = services[0]
    port = svc.spec.ports[0].name or str(svc.spec.ports[0].port)
    path = (f"/api/v1/namespaces/{kube.target.namespace}/services/"
            f"{svc.metadata.name}:{port}/proxy/auth/token")  # fmt: skip
    try:
        response = kube.api.call_api(
            path, "POST",
            body={"username": username, "password": password},
            header_params={"Content-Type": "application/json", "Accept": "application/json"},
            auth_settings=["BearerToken"], _preload_content=False, _request_timeout=15,
        )  # fmt: skip
    except ApiException as exc:
        return _answer(exc.status, exc.body, f"service/{svc.metadata.name}", username)
    raw = response[0] if isinstance(response, tuple) else response
    return _answer(raw.status, json.loads(raw.data or b"{}"), svc.metadata.name, username)
