"""Escape hatches: extra env, volumes, containers, labels, priority, spread and lifecycle hooks,
for every Airflow pod (airflowPods) and per component; guarded so they cannot take over what the
platform owns."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from .conftest import CHART, HelmError, Rendering, container, env_of, pod_spec

pytestmark = pytest.mark.chart

DEPLOYMENTS = ("scheduler", "dag-processor", "triggerer", "api-server", "execution-api", "worker")
RESTRICTED = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "privileged": False,
    "capabilities": {"drop": ["ALL"]},
}


def _readme_example(title: str) -> dict[str, Any]:
    """The values block that follows a heading of the chart README."""
    readme = (CHART / "README.md").read_text()
    section = readme.split(title, 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert block, f"no yaml block after {title!r}"
    return yaml.safe_load(block.group(1))


def _airflow(rendering: Rendering, component: str) -> dict[str, Any]:
    kind = "Job" if component == "migrations" else "Deployment"
    return container(rendering.one(kind, component), component)


def test_global_extras_reach_every_airflow_pod_and_components_add_theirs(render) -> None:
    rendering = render(
        {
            "airflowPods": {
                "extraEnv": [{"name": "TEAM", "value": "data"}, {"name": "TIER", "value": "all"}],
                "extraEnvFrom": [{"configMapRef": {"name": "proxy-settings"}}],
                "extraVolumes": [{"name": "ca", "configMap": {"name": "corporate-ca"}}],
                "extraVolumeMounts": [{"name": "ca", "mountPath": "/etc/ca", "readOnly": True}],
                "podLabels": {"cost-center": "42"},
                "priorityClassName": "airflow-normal",
            },
            "scheduler": {
                "extraEnv": [{"name": "TIER", "value": "scheduler"}],
                "podLabels": {"cost-center": "7"},
                "priorityClassName": "airflow-critical",
            },
        }
    )
    for component in (*DEPLOYMENTS, "migrations"):
        workload = rendering.one("Job" if component == "migrations" else "Deployment", component)
        spec = pod_spec(workload)
        airflow = _airflow(rendering, component)
        env = env_of(airflow)
        assert env["TEAM"]["value"] == "data"
        assert airflow["envFrom"] == [{"configMapRef": {"name": "proxy-settings"}}]
        assert {"name": "ca", "mountPath": "/etc/ca", "readOnly": True} in airflow["volumeMounts"]
        assert {"name": "ca", "configMap": {"name": "corporate-ca"}} in spec["volumes"]
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/component"] == component
        expected = "scheduler" if component == "scheduler" else "all"
        assert env["TIER"]["value"] == expected, component
        assert labels["cost-center"] == ("7" if component == "scheduler" else "42")
        priority = "airflow-critical" if component == "scheduler" else "airflow-normal"
        assert spec["priorityClassName"] == priority


def test_nothing_is_added_by_default(default: Rendering) -> None:
    for component in DEPLOYMENTS:
        spec = pod_spec(default.one("Deployment", component))
        assert "priorityClassName" not in spec
        airflow = _airflow(default, component)
        assert "envFrom" not in airflow and "lifecycle" not in airflow


def test_added_containers_run_restricted_with_bounded_disk(render) -> None:
    rendering = render(
        {
            "airflowPods": {"extraContainers": [{"name": "proxy", "image": "envoy:v1"}]},
            "workers": {
                "extraInitContainers": [{"name": "warm", "image": "busybox:1", "command": ["true"]}]
            },
        }
    )
    worker = rendering.one("Deployment", "worker")
    init_names = [c["name"] for c in pod_spec(worker)["initContainers"]]
    assert init_names[-1] == "warm", "user init containers run after the chart's own"
    for name in ("proxy", "warm"):
        added = container(worker, name)
        assert RESTRICTED.items() <= added["securityContext"].items()
        assert added["resources"]["limits"]["ephemeral-storage"] == "128Mi"
    assert "proxy" in [
        c["name"] for c in pod_spec(rendering.one("Deployment", "scheduler"))["containers"]
    ]
    # A Job with a sidecar would never complete.
    migrations = pod_spec(rendering.one("Job", "migrations"))
    assert [c["name"] for c in migrations["containers"]] == ["migrations"]


def test_a_container_of_its_own_security_context_is_refused_unless_allowed(render) -> None:
    own = {"name": "agent", "image": "agent:1", "securityContext": {"runAsUser": 1000}}
    with pytest.raises(HelmError) as refused:
        render({"triggerer": {"extraContainers": [own]}})
    assert "triggerer.extraContainers[0] (agent) sets a securityContext" in refused.value.stderr
    assert "airflowPods.extraContainersSecurityContext=own" in refused.value.stderr
    rendering = render(
        {
            "airflowPods": {"extraContainersSecurityContext": "own"},
            "triggerer": {"extraContainers": [own]},
        }
    )
    sc = container(rendering.one("Deployment", "triggerer"), "agent")["securityContext"]
    assert sc == {"runAsUser": 1000}


def test_topology_spread_replaces_the_chart_spread_and_defaults_its_selector(
    render, default
) -> None:
    built_in = pod_spec(default.one("Deployment", "api-server"))["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in built_in} == {
        "topology.kubernetes.io/zone",
        "kubernetes.io/hostname",
    }
    own = {
        "maxSkew": 2,
        "topologyKey": "topology.kubernetes.io/zone",
        "whenUnsatisfiable": "DoNotSchedule",
    }
    rendering = render({"apiServer": {"topologySpreadConstraints": [own]}})
    [constraint] = pod_spec(rendering.one("Deployment", "api-server"))["topologySpreadConstraints"]
    assert constraint["maxSkew"] == 2 and constraint["whenUnsatisfiable"] == "DoNotSchedule"
    assert constraint["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == "api-server"
    other = pod_spec(rendering.one("Deployment", "scheduler"))["topologySpreadConstraints"]
    assert other[0]["maxSkew"] == 1, "the other components keep the chart's spread"


def test_lifecycle_hooks_reach_the_airflow_container(render) -> None:
    hook = {"preStop": {"exec": {"command": ["sh", "-c", "sleep 5"]}}}
    rendering = render({"apiServer": {"lifecycle": hook}})
    assert _airflow(rendering, "api-server")["lifecycle"] == hook


@pytest.mark.parametrize(
    ("where", "name", "expected"),
    [
        (
            "workers",
            "AIRFLOW__CORE__EXECUTOR",
            "is the option core.executor, owned by the platform",
        ),
        ("scheduler", "AIRFLOW_HOME", "AIRFLOW_HOME is set by the chart and cannot be overridden"),
        ("airflowPods", "AIRFLOW__CORE__DAGS_FOLDER", "set dags.s3.dagsPrefix"),
        (
            "apiServer",
            "AIRFLOW__SMTP__SMTP_PASSWORD",
            'airflowConfigurationSecrets: {"smtp.smtp_password"',
        ),
        ("triggerer", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD", "Airflow would run a command"),
        ("migrations", "AWS_ROLE_ARN", "serviceAccount.roleArn"),
        ("dagProcessor", "AIRFLOW_PLATFORM_SYNC_ROOT", "cannot be overridden"),
        ("executionApi", "PYTHONPATH", "cannot be overridden"),
    ],
)
def test_platform_owned_variables_are_refused_naming_the_fix(render, where, name, expected) -> None:
    with pytest.raises(HelmError) as refused:
        render({where: {"extraEnv": [{"name": name, "value": "x"}]}})
    assert f"{where}.extraEnv[0] {name} " in refused.value.stderr
    assert expected in refused.value.stderr


def test_a_chart_option_is_changed_through_its_value_not_extra_env(render) -> None:
    with pytest.raises(HelmError) as refused:
        render(
            {
                "airflowConfigurationOptions": {"core.parallelism": "64"},
                "workers": {"extraEnv": [{"name": "AIRFLOW__CORE__PARALLELISM", "value": "8"}]},
            }
        )
    assert 'airflowConfigurationOptions["core.parallelism"]' in refused.value.stderr
    rendering = render(
        {"workers": {"extraEnv": [{"name": "AIRFLOW__CORE__PARALLELISM", "value": "8"}]}}
    )
    assert env_of(_airflow(rendering, "worker"))["AIRFLOW__CORE__PARALLELISM"]["value"] == "8"


def test_a_password_in_a_plain_extra_env_value_is_refused(render) -> None:
    url = "postgresql://airflow:hunter2@db:5432/airflow"
    with pytest.raises(HelmError) as refused:
        render({"workers": {"extraEnv": [{"name": "WAREHOUSE_URL", "value": url}]}})
    assert "workers.extraEnv[0] WAREHOUSE_URL is a URL with a password" in refused.value.stderr
    assert "hunter2" not in refused.value.stderr


def test_a_label_the_chart_sets_is_refused(render) -> None:
    with pytest.raises(HelmError) as refused:
        render({"apiServer": {"podLabels": {"app.kubernetes.io/component": "x"}}})
    assert 'apiServer.podLabels["app.kubernetes.io/component"] is a label the chart sets' in (
        refused.value.stderr
    )


def test_a_volume_named_like_a_chart_volume_is_refused(render) -> None:
    with pytest.raises(HelmError) as refused:
        render({"scheduler": {"extraVolumes": [{"name": "tmp", "emptyDir": {}}]}})
    assert (
        'scheduler.extraVolumes[0] is named "tmp", a volume of the chart\'s own'
        in refused.value.stderr
    )


@pytest.mark.parametrize(
    ("values", "pointer"),
    [
        (
            {"airflowPods": {"extraVolumes": [{"name": "host", "hostPath": {"path": "/"}}]}},
            "/airflowPods/extraVolumes/0",
        ),
        ({"scheduler": {"extraEnv": [{"value": "no name"}]}}, "/scheduler/extraEnv/0"),
        ({"workers": {"extraContainers": [{"name": "no-image"}]}}, "/workers/extraContainers/0"),
        ({"workers": {"extraVolumeMounts": [{"name": "ca"}]}}, "/workers/extraVolumeMounts/0"),
        (
            {
                "triggerer": {
                    "topologySpreadConstraints": [
                        {"maxSkew": 0, "topologyKey": "k", "whenUnsatisfiable": "ScheduleAnyway"}
                    ]
                }
            },
            "/triggerer/topologySpreadConstraints/0/maxSkew",
        ),
        (
            {"apiServer": {"lifecycle": {"preStop": {"tcpSocket": {"port": 80}}}}},
            "/apiServer/lifecycle/preStop",
        ),
        ({"migrations": {"extraContainers": []}}, "/migrations"),
        (
            {"airflowPods": {"extraContainersSecurityContext": "privileged"}},
            "/airflowPods/extraContainersSecurityContext",
        ),
    ],
)
def test_the_schema_refuses_what_kubernetes_would(render, values, pointer) -> None:
    with pytest.raises(HelmError) as refused:
        render(values)
    assert f"at '{pointer}" in refused.value.stderr


def test_the_readme_corporate_ca_example_renders_as_documented(render) -> None:
    values = _readme_example("### Example: a corporate CA bundle")
    rendering = render(values)
    for component in (*DEPLOYMENTS, "migrations"):
        airflow = _airflow(rendering, component)
        env = {k: v.get("value") for k, v in env_of(airflow).items()}
        bundle = "/etc/ssl/corporate/ca-bundle.pem"
        for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT", "AWS_CA_BUNDLE"):
            assert env[name] == bundle, (component, name)
        assert env["UV_NATIVE_TLS"] == "true"
        mount = next(m for m in airflow["volumeMounts"] if m["name"] == "corporate-ca")
        assert mount == {
            "name": "corporate-ca",
            "mountPath": "/etc/ssl/corporate",
            "readOnly": True,
        }
        volumes = pod_spec(
            rendering.one("Job" if component == "migrations" else "Deployment", component)
        )["volumes"]
        volume = next(v for v in volumes if v["name"] == "corporate-ca")
        assert volume["configMap"]["name"] == "corporate-ca-bundle"
