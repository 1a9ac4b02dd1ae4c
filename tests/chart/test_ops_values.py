"""Day-2 values: hibernate, the canary bundle, the snapshot hook before upgrades."""

from __future__ import annotations

import json

import pytest

from .conftest import AIRFLOW_COMPONENTS, HelmError, container, env_values

pytestmark = pytest.mark.chart

HIBERNATE = {"hibernate": True, "pgbouncer": {"enabled": True, "configSecret": "pgb",
             "connectionSecret": {"secretName": "pgb-url"}}}  # fmt: skip


def test_hibernation_scales_every_deployment_to_zero_and_pauses_keda(render) -> None:
    rendering = render(HIBERNATE)
    deployments = rendering.all("Deployment")
    assert {d["metadata"]["labels"]["app.kubernetes.io/component"] for d in deployments} >= {
        *AIRFLOW_COMPONENTS,
        "pgbouncer",
    }
    assert {d["metadata"]["name"]: d["spec"].get("replicas") for d in deployments} == {
        d["metadata"]["name"]: 0 for d in deployments
    }
    scaled = rendering.one("ScaledObject", "worker")
    assert scaled["metadata"]["annotations"]["autoscaling.keda.sh/paused-replicas"] == "0"


def test_awake_environments_keep_their_counts_and_leave_autoscaled_ones_alone(render) -> None:
    rendering = render()
    replicas = {
        d["metadata"]["labels"]["app.kubernetes.io/component"]: d["spec"].get("replicas")
        for d in rendering.all("Deployment")
    }
    assert replicas == {"scheduler": 2, "dag-processor": 2, "triggerer": 2,
                        "api-server": None, "execution-api": 2, "worker": None}  # fmt: skip
    annotations = rendering.one("ScaledObject", "worker")["metadata"].get("annotations") or {}
    assert "autoscaling.keda.sh/paused-replicas" not in annotations


def test_the_canary_adds_the_platform_bundle_with_its_schedule_and_queues(render) -> None:
    values = {"canary": {"enabled": True, "schedule": "*/2 * * * *", "queues": ["default", "gpu"]}}
    rendering = render(values)
    for component in AIRFLOW_COMPONENTS:
        deployment = rendering.one("Deployment", component)
        env = env_values(container(deployment, component))
        bundles = json.loads(env["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"])
        assert [b["name"] for b in bundles] == ["dags-folder", "platform"]
        assert bundles[0]["kwargs"] == {}  # the synced DAGs folder, as without the canary
        assert bundles[1]["kwargs"] == {"path": "/opt/airflow-platform/dags/platform"}
        assert env["AIRFLOW_PLATFORM_CANARY_SCHEDULE"] == "*/2 * * * *"
        assert env["AIRFLOW_PLATFORM_CANARY_QUEUES"] == "default,gpu"
    off = env_values(container(render().one("Deployment", "scheduler"), "scheduler"))
    assert "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST" not in off


@pytest.mark.parametrize(
    ("canary", "field"),
    [({"schedule": "every five minutes"}, "schedule"), ({"queues": []}, "queues"),
     ({"dagsPath": "relative/dags"}, "dagsPath")],
)  # fmt: skip
def test_bad_canary_values_are_refused_naming_the_field(render, canary, field) -> None:
    with pytest.raises(HelmError) as caught:
        render({"canary": canary})
    assert field in caught.value.stderr


def test_the_snapshot_runs_before_the_migrations_on_upgrade_only(render) -> None:
    rendering = render({"snapshot": {"enabled": True, "dbClusterIdentifier": "aurora-prod"}})
    job = rendering.one("Job", "snapshot")
    migrations = rendering.one("Job", "migrations")
    hook = job["metadata"]["annotations"]
    assert hook["helm.sh/hook"] == "pre-upgrade"
    assert int(hook["helm.sh/hook-weight"]) < int(
        migrations["metadata"]["annotations"]["helm.sh/hook-weight"]
    )
    account = rendering.one("ServiceAccount", "snapshot")["metadata"]["annotations"]
    assert int(account["helm.sh/hook-weight"]) < int(hook["helm.sh/hook-weight"])
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:3] == ["ops", "snapshot", "create"]
    assert args[args.index("--db-cluster") + 1] == "aurora-prod"
    assert "--wait" in args
    spec = job["spec"]["template"]["spec"]
    assert (
        spec["serviceAccountName"]
        == rendering.one("ServiceAccount", "snapshot")["metadata"]["name"]
    )
    assert spec["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    policy = rendering.one("NetworkPolicy", "snapshot")
    assert policy["metadata"]["annotations"]["helm.sh/hook"] == "pre-upgrade"
    assert policy["spec"]["ingress"] == []
    ports = sorted(p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"])
    assert ports == [53, 53, 443, 5432]  # DNS, the database, AWS APIs


def test_with_argocd_the_snapshot_is_a_presync_hook(render) -> None:
    values = {"snapshot": {"enabled": True, "method": "pg_dump", "s3Uri": "s3://backups/airflow/"}}
    rendering = render(values, files=("default-values.yaml", "argocd-values.yaml"))
    for kind in ("Job", "ServiceAccount"):
        annotations = rendering.one(kind, "snapshot")["metadata"]["annotations"]
        assert annotations["argocd.argoproj.io/hook"] == "PreSync"
        assert not any(k.startswith("helm.sh/hook") for k in annotations)
    args = rendering.one("Job", "snapshot")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--s3-uri") + 1] == "s3://backups/airflow/"


@pytest.mark.parametrize(
    ("snapshot", "named"),
    [({"method": "rds"}, "snapshot.dbClusterIdentifier"),
     ({"method": "pg_dump"}, "snapshot.s3Uri")],
)  # fmt: skip
def test_a_snapshot_without_its_target_is_refused(render, snapshot, named) -> None:
    with pytest.raises(HelmError) as caught:
        render({"snapshot": {"enabled": True, **snapshot}})
    assert named in caught.value.stderr
