"""How an environment's Status is derived, and the Helm release record it starts from."""

from __future__ import annotations

import base64
import gzip
import json

import pytest

from airflow_platform.ops.model import Component, Heartbeat, derive_status
from airflow_platform.ops.release import decode_release

READY = [Component("scheduler", 2, 2), Component("api-server", 2, 2)]
HEALTHY = Heartbeat("healthy")


def status(release: str, revision: int = 2, **kw) -> str:
    args = dict(hibernated=False, snapshot_running=False, migrations_running=False,
                components=READY, heartbeat=HEALTHY)  # fmt: skip
    args.update(kw)
    return derive_status(release, revision, **args)


@pytest.mark.parametrize(
    ("release", "revision", "extra", "expected"),
    [
        ("deployed", 3, {}, "AVAILABLE"),
        ("pending-install", 1, {}, "CREATING"),
        ("pending-upgrade", 4, {}, "UPDATING"),
        ("pending-upgrade", 4, {"snapshot_running": True}, "CREATING_SNAPSHOT"),
        ("pending-rollback", 4, {}, "ROLLING_BACK"),
        ("uninstalling", 4, {}, "DELETING"),
        ("failed", 1, {}, "CREATE_FAILED"),
        ("failed", 5, {}, "UPDATE_FAILED"),
        ("deployed", 3, {"hibernated": True, "components": []}, "HIBERNATED"),
        ("deployed", 3, {"migrations_running": True}, "UPDATING"),
        ("deployed", 3, {"components": [Component("scheduler", 1, 2)]}, "UNHEALTHY"),
        # An autoscaler scaling a component out is not a fault; none of it ready is.
        (
            "deployed",
            3,
            {"components": [Component("api-server", 1, 3, autoscaled=True)]},
            "AVAILABLE",
        ),
        ("deployed", 3, {"components": [Component("worker", 0, 2, autoscaled=True)]}, "UNHEALTHY"),
        ("deployed", 3, {"heartbeat": Heartbeat("unhealthy")}, "UNHEALTHY"),
        ("deployed", 3, {"heartbeat": Heartbeat("unknown")}, "AVAILABLE"),
        ("something-new", 3, {}, "UNKNOWN"),
    ],
)
def test_status_follows_the_release_then_what_runs(release, revision, extra, expected) -> None:
    assert status(release, revision, **extra) == expected


def test_the_release_secret_is_decoded_as_helm_stores_it() -> None:
    doc = {"name": "airflow", "version": 7, "info": {"status": "deployed"}, "config": {"a": 1}}
    helm_value = base64.b64encode(gzip.compress(json.dumps(doc).encode()))
    kubernetes_data = base64.b64encode(helm_value).decode()  # Secret .data is base64 again
    assert decode_release(kubernetes_data) == doc
