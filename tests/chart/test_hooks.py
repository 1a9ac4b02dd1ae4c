"""Database migrations run first: a Helm hook, or an ArgoCD Sync hook; every component
waits for them before it starts."""

from __future__ import annotations

import pytest

from .conftest import AIRFLOW_COMPONENTS, container

pytestmark = pytest.mark.chart


def test_migrations_job_is_a_helm_hook_by_default(default) -> None:
    job = default.one("Job", "migrations")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert annotations["helm.sh/hook-weight"] == "0"
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    assert not any(k.startswith("argocd.argoproj.io") for k in annotations)
    migrate = container(job, "migrations")
    assert migrate["command"] == [
        "airflow-platform",
        "bootstrap",
        "--component",
        "migrations",
        "--",
        "airflow",
    ]
    assert migrate["args"] == ["db", "migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_migrations_service_account_exists_before_the_hook(default) -> None:
    account = default.one("ServiceAccount", "migrations")
    annotations = account["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert int(annotations["helm.sh/hook-weight"]) < 0


def test_argocd_mode_uses_a_sync_hook_in_an_early_wave(render) -> None:
    rendering = render(files=("argocd-values.yaml",))
    annotations = rendering.one("Job", "migrations")["metadata"]["annotations"]
    assert annotations["argocd.argoproj.io/hook"] == "Sync"
    assert int(annotations["argocd.argoproj.io/sync-wave"]) < 0
    assert not any(k.startswith("helm.sh/hook") for k in annotations)
    account = rendering.one("ServiceAccount", "migrations")["metadata"]["annotations"]
    assert int(account["argocd.argoproj.io/sync-wave"]) < int(
        annotations["argocd.argoproj.io/sync-wave"]
    )


def test_migrations_use_the_direct_connection_and_no_dagsync(render) -> None:
    job = render(files=("pgbouncer-values.yaml",)).one("Job", "migrations")
    names = [c["name"] for c in job["spec"]["template"]["spec"]["containers"]]
    assert names == ["migrations"]
    assert "initContainers" not in job["spec"]["template"]["spec"]
    env = {e["name"]: e for e in container(job, "migrations")["env"]}
    ref = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]["valueFrom"]["secretKeyRef"]
    assert ref["name"] == "airflow-database"


@pytest.mark.parametrize(
    "component", [c for c in (*AIRFLOW_COMPONENTS, "execution-api") if c != "worker"]
)
def test_components_wait_for_migrations(default, component) -> None:
    deployment = default.one("Deployment", component)
    init = [c["name"] for c in deployment["spec"]["template"]["spec"]["initContainers"]]
    assert "wait-for-migrations" in init
    wait = container(deployment, "wait-for-migrations")
    assert wait["command"][:3] == ["airflow", "db", "check-migrations"]
    assert wait["command"][-2:] == ["--migration-wait-timeout", "900"]
