"""requirements.cache.existingClaim: the requirements cache is an emptyDir per pod unless a
PersistentVolumeClaim is named, then every Airflow pod mounts that one claim."""

from __future__ import annotations

import pytest

from .conftest import HelmError, container, containers, pod_spec

pytestmark = pytest.mark.chart

CACHE_PATH = "/opt/airflow/wheel-cache"


def _cache_volumes(rendering) -> dict[str, dict]:
    """The volume behind the cache mount of each workload running the bootstrap entrypoint."""
    found = {}
    for workload in rendering.workloads():
        volumes = {v["name"]: v for v in pod_spec(workload).get("volumes", [])}
        for c in pod_spec(workload)["containers"]:
            if c.get("command", [])[:2] != ["airflow-platform", "bootstrap"]:
                continue
            mount = next(m for m in c["volumeMounts"] if m["mountPath"] == CACHE_PATH)
            found[f"{workload['kind']}/{c['name']}"] = volumes[mount["name"]]
    return found


def test_default_is_an_empty_dir_per_pod(default) -> None:
    volumes = _cache_volumes(default)
    assert {"Deployment/scheduler", "Deployment/worker", "Deployment/api-server"} <= set(volumes)
    for where, volume in volumes.items():
        assert volume == {"name": "wheel-cache", "emptyDir": {"sizeLimit": "2Gi"}}, where


def test_existing_claim_is_mounted_by_every_airflow_pod(render) -> None:
    rendering = render({"requirements": {"cache": {"existingClaim": "airflow-requirements"}}})
    volumes = _cache_volumes(rendering)
    assert len(volumes) >= 5
    for where, volume in volumes.items():
        assert volume == {
            "name": "wheel-cache",
            "persistentVolumeClaim": {"claimName": "airflow-requirements"},
        }, where
    # Written by the scheduler only: read-only wherever else user code runs.
    for workload in rendering.workloads():
        for c in containers(workload):
            for mount in c.get("volumeMounts", []):
                if mount["name"] == "wheel-cache":
                    writer = workload["metadata"]["labels"]["app.kubernetes.io/component"]
                    expected = writer != "scheduler"
                    assert mount.get("readOnly", False) is expected, (writer, c["name"])
    # The packages themselves stay on the pod's own volume, restored from the claim.
    worker = rendering.one("Deployment", "worker")
    mounts = {m["mountPath"]: m["name"] for m in container(worker, "worker")["volumeMounts"]}
    packages = next(
        v for v in pod_spec(worker)["volumes"] if v["name"] == mounts["/opt/airflow/packages"]
    )
    assert "emptyDir" in packages


@pytest.mark.parametrize(
    ("cache", "expected"),
    [
        ({"existingClaim": "Cache_Volume"}, "/requirements/cache/existingClaim"),
        ({"existingClaim": 7}, "/requirements/cache/existingClaim"),
        ({"claim": "x"}, "'claim'"),
    ],
)
def test_bad_cache_values_are_refused_by_name(render, cache, expected) -> None:
    with pytest.raises(HelmError) as caught:
        render({"requirements": {"cache": cache}})
    assert expected in caught.value.stderr
