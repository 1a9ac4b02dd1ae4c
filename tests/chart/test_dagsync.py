"""dagsync wiring: an init container (`airflow-platform dagsync --once`) and a plain sidecar
in every Airflow pod but migrations, configured by environment, sharing the sync volume
that Airflow mounts read-only."""

from __future__ import annotations

import pytest

from .conftest import AIRFLOW_COMPONENTS, HelmError, container, env_of, env_values, pod_spec

pytestmark = pytest.mark.chart


@pytest.mark.parametrize("component", AIRFLOW_COMPONENTS)
def test_init_container_and_plain_sidecar(default, component) -> None:
    pod = pod_spec(default.one("Deployment", component))
    assert pod["initContainers"][0]["name"] == "dagsync-init"
    init = container(default.one("Deployment", component), "dagsync-init")
    sidecar = container(default.one("Deployment", component), "dagsync")
    assert init["command"] == ["airflow-platform", "dagsync", "--once"]
    assert sidecar["command"] == ["airflow-platform", "dagsync"]
    # A plain container, not a native sidecar: it must run on old control planes too.
    assert "restartPolicy" not in sidecar
    assert sidecar in pod["containers"]
    for c in (init, sidecar):
        mounts = {m["name"]: m for m in c["volumeMounts"]}
        assert mounts["sync"]["mountPath"] == "/opt/airflow/sync"
        assert not mounts["sync"].get("readOnly", False)
    airflow = {
        m["name"]: m
        for m in container(default.one("Deployment", component), component)["volumeMounts"]
    }
    assert airflow["sync"] == {"name": "sync", "mountPath": "/opt/airflow/sync", "readOnly": True}


def test_sidecar_health_endpoints(default) -> None:
    sidecar = container(default.one("Deployment", "scheduler"), "dagsync")
    assert sidecar["ports"] == [{"name": "dagsync", "containerPort": 8099}]
    # Bound to the pod IP the kubelet probes, not every interface of the pod.
    host = env_of(sidecar)["DAGSYNC_HEALTH_HOST"]
    assert host == {
        "name": "DAGSYNC_HEALTH_HOST",
        "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}},
    }
    assert sidecar["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "dagsync"}
    assert sidecar["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "dagsync"}


def test_environment_per_contract(eks) -> None:
    env = env_values(container(eks.one("Deployment", "worker"), "dagsync"))
    assert env == {
        "DAGSYNC_BUCKET": "analytics-prod-airflow-123456789012",
        "DAGSYNC_DAGS_PREFIX": "dags/",
        "AIRFLOW_PLATFORM_SYNC_ROOT": "/opt/airflow/sync",
        "AIRFLOW_PLATFORM_LOG_FORMAT": "json",
        "AIRFLOW_PLATFORM_ENVIRONMENT": "analytics-prod",
        "DAGSYNC_INTERVAL": "30",
        "DAGSYNC_EVENT_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/analytics-prod-dag-events",
        "DAGSYNC_PLUGINS_KEY": "plugins.zip",
        "DAGSYNC_PLUGINS_VERSION": "3sL4kqtJlcpXroDTDmJ-rmSpXd3dIbrHY",
        "DAGSYNC_REQUIREMENTS_KEY": "requirements.txt",
        "DAGSYNC_REQUIREMENTS_VERSION": "Tb2b1qRHyQ1u4bVnpsqX.nY6wCMh0x7u",
        "DAGSYNC_STARTUP_KEY": "startup.sh",
        "DAGSYNC_STARTUP_VERSION": "6ZfA3lR9KZnW1m4rmIbv3bG4m3e9X9sE",
        "DAGSYNC_STRICT": "true",
        "DAGSYNC_HEALTH_PORT": "8099",
        "DAGSYNC_PARALLELISM": "8",
        "DAGSYNC_MAX_OBJECT_BYTES": "104857600",
        "DAGSYNC_MAX_TOTAL_BYTES": "2147483648",
        "DAGSYNC_MAX_FILES": "20000",
        "DAGSYNC_MAX_SCRIPT_BYTES": "1048576",
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "PYTHONUNBUFFERED": "1",
    }


def test_unset_optional_keys_are_left_out(default) -> None:
    env = env_values(container(default.one("Deployment", "worker"), "dagsync-init"))
    assert env["DAGSYNC_BUCKET"] == "airflow-dags-123456789012"
    assert not {"DAGSYNC_PLUGINS_KEY", "DAGSYNC_EVENT_QUEUE_URL", "DAGSYNC_STARTUP_KEY"} & set(env)


def test_new_plugins_version_rolls_every_component(render) -> None:
    before = render()
    after = render({"dags": {"s3": {"pluginsKey": "plugins.zip", "pluginsVersion": "v2"}}})
    for component in AIRFLOW_COMPONENTS:
        a = before.one("Deployment", component)["spec"]["template"]
        b = after.one("Deployment", component)["spec"]["template"]
        assert a != b, component


def test_limits_and_bind_address_reach_both_dagsync_containers(render) -> None:
    rendering = render(
        {
            "dags": {
                "sync": {
                    "maxObjectBytes": 5 * 1024**3,
                    "maxTotalBytes": 20 * 1024**3,
                    "maxFiles": 100000,
                    "maxScriptBytes": 4096,
                    "healthHost": "10.0.0.7",
                }
            }
        }
    )
    for name in ("dagsync-init", "dagsync"):
        env = env_values(container(rendering.one("Deployment", "worker"), name))
        assert env["DAGSYNC_MAX_OBJECT_BYTES"] == "5368709120"
        assert env["DAGSYNC_MAX_TOTAL_BYTES"] == "21474836480"
        assert env["DAGSYNC_MAX_FILES"] == "100000"
        assert env["DAGSYNC_MAX_SCRIPT_BYTES"] == "4096"
        assert env["DAGSYNC_HEALTH_HOST"] == "10.0.0.7"


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_every_interface_is_refused_as_bind_address(render, host: str) -> None:
    with pytest.raises(HelmError, match="healthHost"):
        render({"dags": {"sync": {"healthHost": host}}})
