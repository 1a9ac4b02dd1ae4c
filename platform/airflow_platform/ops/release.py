"""The Helm release as Helm itself stores it: Secrets `sh.helm.release.v1.<name>.v<N>`
labelled owner=helm, whose `release` key is base64 (Helm's) of gzip of the release JSON."""

from __future__ import annotations

import base64
import gzip
import json
from dataclasses import dataclass
from typing import Any

from airflow_platform.ops.errors import OpsError
from airflow_platform.ops.kube import Kube


@dataclass(frozen=True)
class Release:
    name: str
    revision: int
    status: str  # deployed | pending-install | pending-upgrade | pending-rollback | failed ...
    chart_version: str
    app_version: str
    last_deployed: str
    description: str
    values: dict[str, Any]  # the user-supplied values (helm get values)


def decode_release(data: str) -> dict[str, Any]:
    """The release JSON from the Secret's `release` value (Kubernetes base64 included)."""
    helm_encoded = base64.b64decode(data)
    raw = base64.b64decode(helm_encoded)
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return json.loads(raw)


def latest_release(kube: Kube) -> Release:
    target = kube.target
    secrets = kube.call(
        kube.core.list_namespaced_secret,
        target.namespace,
        label_selector=f"owner=helm,name={target.release}",
    ).items
    if not secrets:
        raise OpsError(
            f"no Helm release {target.release!r} in namespace {target.namespace!r}: "
            "check --release and --namespace (`helm list -A` shows the releases)"
        )
    newest = max(secrets, key=lambda s: int(s.metadata.labels.get("version", "0")))
    doc = decode_release(newest.data["release"])
    info = doc.get("info", {})
    meta = doc.get("chart", {}).get("metadata", {})
    return Release(
        name=doc.get("name", target.release),
        revision=int(doc.get("version", 0)),
        status=str(info.get("status", "unknown")),
        chart_version=str(meta.get("version", "")),
        app_version=str(meta.get("appVersion", "")),
        last_deployed=str(info.get("last_deployed", "")),
        description=str(info.get("description", "")),
        values=doc.get("config") or {},
    )
