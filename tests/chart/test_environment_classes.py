"""environmentClass presets (MWAA classes): the size of every component and the tasks per
worker; explicit values win."""

from __future__ import annotations

import pytest

from .conftest import container, env_values

pytestmark = pytest.mark.chart

# class: (tasks per worker, scheduler, worker, webserver) as (cpu, memory)
CLASSES = {
    "mw1.micro": (3, ("1", "3Gi"), ("1", "3Gi"), ("1", "3Gi")),
    "mw1.small": (5, ("1", "2Gi"), ("1", "2Gi"), ("1", "2Gi")),
    "mw1.medium": (10, ("2", "4Gi"), ("2", "4Gi"), ("1", "2Gi")),
    "mw1.large": (20, ("4", "8Gi"), ("4", "8Gi"), ("2", "4Gi")),
    "mw1.xlarge": (40, ("8", "24Gi"), ("8", "24Gi"), ("4", "12Gi")),
    "mw1.2xlarge": (80, ("16", "48Gi"), ("16", "48Gi"), ("8", "24Gi")),
}


def size(rendering, component: str) -> tuple[str, str]:
    resources = container(rendering.one("Deployment", component), component)["resources"]
    cpu_memory = {k: {r: v[r] for r in ("cpu", "memory")} for k, v in resources.items()}
    assert cpu_memory["requests"] == cpu_memory["limits"], "a fixed size, like a Fargate task"
    return str(resources["requests"]["cpu"]), resources["requests"]["memory"]


@pytest.mark.parametrize("env_class", sorted(CLASSES))
def test_class_sets_sizes_and_tasks_per_worker(render, env_class) -> None:
    tasks, scheduler, worker, webserver = CLASSES[env_class]
    extra = (
        {"scheduler": {"replicas": 1}, "apiServer": {"minReplicas": 1}}
        if env_class == "mw1.micro"
        else {}
    )
    rendering = render({"environmentClass": env_class, **extra})
    assert size(rendering, "scheduler") == scheduler
    assert size(rendering, "dag-processor") == scheduler
    assert size(rendering, "worker") == worker
    assert size(rendering, "api-server") == webserver
    worker_env = env_values(container(rendering.one("Deployment", "worker"), "worker"))
    assert worker_env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == str(tasks)
    query = rendering.one("ScaledObject", "worker")["spec"]["triggers"][0]["metadata"]["query"]
    assert f"/ {tasks})" in query


def test_explicit_resources_win(render) -> None:
    own = {"requests": {"cpu": "3", "memory": "5Gi"}, "limits": {"memory": "6Gi"}}
    rendering = render({"environmentClass": "mw1.large", "workers": {"resources": own}})
    # ephemeral-storage comes from ephemeralStorage.containers.airflow unless set here.
    assert container(rendering.one("Deployment", "worker"), "worker")["resources"] == {
        "requests": {**own["requests"], "ephemeral-storage": "1Gi"},
        "limits": {**own["limits"], "ephemeral-storage": "20Gi"},
    }
    assert size(rendering, "scheduler") == ("4", "8Gi")


def test_2xlarge_example(render) -> None:
    rendering = render(files=("2xlarge-values.yaml",))
    assert rendering.one("Deployment", "scheduler")["spec"]["replicas"] == 5
    assert size(rendering, "worker") == ("16", "48Gi")
    assert rendering.one("ScaledObject", "worker")["spec"]["maxReplicaCount"] == 25
