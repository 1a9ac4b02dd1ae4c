"""Node-local disk is bounded everywhere: every emptyDir has a sizeLimit, every container
(init containers, sidecars, Jobs, the helm test pod) an ephemeral-storage request and limit,
and each pod's containers together are allowed at least what its emptyDirs may hold, so a
full volume is refused by its sizeLimit before the kubelet evicts the whole pod for it."""

from __future__ import annotations

import re

import pytest

from .conftest import ci_files, container, containers, pod_spec

pytestmark = pytest.mark.chart

_UNITS = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def quantity(value: str | int) -> float:
    """A Kubernetes quantity in bytes."""
    found = re.fullmatch(r"([0-9.]+)(m|k|M|G|T|Ki|Mi|Gi|Ti)?", str(value))
    assert found, f"not a quantity: {value!r}"
    number, unit = float(found.group(1)), found.group(2) or ""
    return number / 1000 if unit == "m" else number * _UNITS[unit]


@pytest.fixture(scope="module", params=ci_files())
def workloads(request, render) -> list[dict]:
    """The Deployments, Jobs and Pods of one ci/ value file (PgBouncer, Vault, KEDA off...)."""
    rendering = render(files=(request.param,))
    found = rendering.workloads()
    assert found
    return found


def test_every_emptydir_has_a_size_limit(workloads) -> None:
    for obj in workloads:
        for volume in pod_spec(obj).get("volumes", []):
            if "emptyDir" in volume:
                limit = volume["emptyDir"].get("sizeLimit")
                where = f"{obj['kind']}/{obj['metadata']['name']} volume {volume['name']}"
                assert limit is not None, f"{where} has no sizeLimit"
                assert quantity(limit) > 0, where


def test_every_container_requests_and_limits_ephemeral_storage(workloads) -> None:
    for obj in workloads:
        for c in containers(obj):
            where = f"{obj['kind']}/{obj['metadata']['name']} container {c['name']}"
            resources = c.get("resources", {})
            request = resources.get("requests", {}).get("ephemeral-storage")
            limit = resources.get("limits", {}).get("ephemeral-storage")
            assert request is not None and limit is not None, f"{where}: {resources}"
            assert 0 < quantity(request) <= quantity(limit), where


def test_the_containers_of_a_pod_may_hold_its_emptydirs(workloads) -> None:
    """The kubelet evicts a pod whose emptyDirs and containers pass the sum of its
    containers' limits: that sum must cover every sizeLimit."""
    for obj in workloads:
        spec = pod_spec(obj)
        volumes = sum(
            quantity(v["emptyDir"]["sizeLimit"]) for v in spec.get("volumes", []) if "emptyDir" in v
        )
        limits = sum(
            quantity(c["resources"]["limits"]["ephemeral-storage"]) for c in spec["containers"]
        )
        assert limits >= volumes, f"{obj['kind']}/{obj['metadata']['name']}"


def test_defaults_bound_the_sync_volume_by_the_dags_limits(default) -> None:
    worker = default.one("Deployment", "worker")
    volumes = {v["name"]: v for v in pod_spec(worker)["volumes"]}
    assert volumes["sync"]["emptyDir"] == {"sizeLimit": "8Gi"}
    # Three DAG versions of the largest folder dagsync accepts fit.
    dagsync = {e["name"]: e.get("value") for e in container(worker, "dagsync")["env"]}
    assert 3 * int(dagsync["DAGSYNC_MAX_TOTAL_BYTES"]) <= quantity("8Gi")
    assert container(worker, "worker")["resources"]["limits"]["ephemeral-storage"] == "20Gi"


def test_a_components_own_ephemeral_storage_wins(render) -> None:
    rendering = render(
        {
            "workers": {
                "resources": {
                    "requests": {"cpu": "1", "memory": "2Gi", "ephemeral-storage": "5Gi"},
                    "limits": {"memory": "2Gi", "ephemeral-storage": "30Gi"},
                }
            },
            "ephemeralStorage": {"volumes": {"logs": "9Gi"}},
        }
    )
    worker = rendering.one("Deployment", "worker")
    resources = container(worker, "worker")["resources"]
    assert resources["requests"] == {"cpu": "1", "memory": "2Gi", "ephemeral-storage": "5Gi"}
    assert resources["limits"] == {"memory": "2Gi", "ephemeral-storage": "30Gi"}
    volumes = {v["name"]: v for v in pod_spec(worker)["volumes"]}
    assert volumes["logs"]["emptyDir"] == {"sizeLimit": "9Gi"}
    # The other components keep the defaults.
    scheduler = container(rendering.one("Deployment", "scheduler"), "scheduler")["resources"]
    assert scheduler["limits"]["ephemeral-storage"] == "20Gi"
