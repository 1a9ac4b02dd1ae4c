"""environmentClass presets (MWAA classes): the size of every component and the tasks per
worker; explicit values win. The chart reads the presets from files/environment-classes.json,
written from airflow_platform.environment.classes: the tests here prove the two agree."""

from __future__ import annotations

import configparser
import json

import pytest

from airflow_platform.environment.classes import ENVIRONMENT_CLASSES, chart_classes_json

from .conftest import CHART, HelmError, container, env_values

pytestmark = pytest.mark.chart

# MWAA's documentation: (tasks per worker, scheduler, worker, webserver) as (cpu, memory)
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


def _fewest(env_class: str) -> dict:
    spec = ENVIRONMENT_CLASSES[env_class]
    return {
        "scheduler": {"replicas": spec.schedulers[0]},
        "apiServer": {"minReplicas": spec.webservers[0], "maxReplicas": spec.webservers[1]},
    }


def test_the_chart_ships_the_presets_python_defines() -> None:
    shipped = (CHART / "files" / "environment-classes.json").read_text()
    assert shipped == chart_classes_json(), (
        "charts/airflow-platform/files/environment-classes.json is stale: run "
        "`python -m airflow_platform.environment.classes`"
    )
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["properties"]["environmentClass"]["enum"] == list(ENVIRONMENT_CLASSES)


@pytest.mark.parametrize("env_class", sorted(ENVIRONMENT_CLASSES))
def test_chart_and_model_agree_on_every_preset(render, env_class) -> None:
    """What the chart renders for a class is what the environment model says of it."""
    spec = ENVIRONMENT_CLASSES[env_class]
    on = {"pgbouncer": {"enabled": True, "connectionSecret": {"secretName": "pgb"}}}
    rendering = render({"environmentClass": env_class, **_fewest(env_class), **on})
    for component, preset in (
        ("scheduler", spec.scheduler),
        ("dag-processor", spec.scheduler),
        ("worker", spec.worker),
        ("api-server", spec.webserver),
        ("execution-api", spec.webserver),
        ("triggerer", spec.webserver),
    ):
        assert size(rendering, component) == (preset.cpu, preset.memory), component
    worker_env = env_values(container(rendering.one("Deployment", "worker"), "worker"))
    assert worker_env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == str(spec.tasks_per_worker)
    query = rendering.one("ScaledObject", "worker")["spec"]["triggers"][0]["metadata"]["query"]
    assert f"/ {spec.tasks_per_worker})" in query
    ini = configparser.ConfigParser(interpolation=None)
    ini.read_string(rendering.one("ConfigMap", "pgbouncer")["data"]["pgbouncer.ini"])
    pool = (int(ini["pgbouncer"]["default_pool_size"]), int(ini["pgbouncer"]["max_client_conn"]))
    assert pool == (spec.pgbouncer_pool, spec.pgbouncer_clients)
    assert rendering.one("Deployment", "scheduler")["spec"]["replicas"] == spec.schedulers[0]
    hpa = rendering.one("HorizontalPodAutoscaler", "api-server")["spec"]
    assert hpa["minReplicas"] == spec.webservers[0]


@pytest.mark.parametrize(
    "env_class", [name for name, spec in ENVIRONMENT_CLASSES.items() if spec.schedulers[0] > 1]
)
def test_chart_refuses_fewer_schedulers_and_api_servers_than_the_class_allows(
    render, env_class
) -> None:
    spec = ENVIRONMENT_CLASSES[env_class]
    for field, key, values in (
        ("scheduler.replicas", "schedulers", {"scheduler": {"replicas": spec.schedulers[0] - 1}}),
        (
            "apiServer.minReplicas",
            "webservers",
            {"apiServer": {"minReplicas": spec.webservers[0] - 1}},
        ),
    ):
        low, high = getattr(spec, key)
        # classes allowing one fewer: named in the message as the way out
        others = ", ".join(n for n, o in ENVIRONMENT_CLASSES.items() if getattr(o, key)[0] < low)
        with pytest.raises(HelmError) as refused:
            render({"environmentClass": env_class, **values})
        assert (
            f"{field}={low - 1} is below what environmentClass {env_class} allows "
            f"({low} to {high}; {low - 1} is allowed with {others})"
        ) in refused.value.stderr


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
