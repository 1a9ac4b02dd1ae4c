"""Worker queues (workers.queues): each extra Celery queue gets workers of its own.

Specification:
- a release made with today's values renders the default worker exactly as before;
- each queue has its own Deployment (worker-<name>), whose pods no other Deployment selects,
  and whose Celery worker consumes that queue only;
- every Airflow container knows every queue's SQS URL (the scheduler sends there);
- each queue scales by MWAA's formula over its own running + queued tasks and SQS depth
  (ScaledObject; a CPU HPA without KEDA), between its own min (0 allowed) and max;
- size: an environment class, explicit resources, or the workers'; nodeSelector,
  tolerations and replacement strategy per queue;
- the drain-safe shutdown, deletion-cost agent and network policy of the workers;
- bad queues are refused, naming the field.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest

from airflow_platform.scaling.keda import BUSY_WORKERS_QUERY, demand_query, queue_condition

from .conftest import CHART, CI_DIR, NAMESPACE, RELEASE, HelmError, container, env_values, pod_spec

pytestmark = pytest.mark.chart

REPO = CHART.parents[1]
# The last commit before worker queues: what "today's values" rendered.
BASELINE = "8c59f87"
# Worker variables whose defaults changed since, for reasons of their own (not queues).
CHANGED_SINCE = {
    # With parse requests an unchanged DAG file is re-parsed every 300 s, no longer every 30 s
    # (test_dagsync_parse_requests.py).
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL",
}
URL = "https://sqs.us-east-1.amazonaws.com/123456789012/"
GPU = {
    "name": "gpu",
    "sqsQueueUrl": URL + "airflow-gpu",
    "environmentClass": "mw1.large",
    "minWorkers": 0,
    "maxWorkers": 4,
}
ETL = {"name": "etl", "sqsQueueUrl": URL + "airflow-etl", "maxWorkers": 3}


def queues(*items: dict[str, Any], **workers: Any) -> dict[str, Any]:
    return {"workers": {"queues": list(items), **workers}}


def triggers(rendering, component: str) -> dict[str, dict]:
    spec = rendering.one("ScaledObject", component)["spec"]
    return {t["name"]: t for t in spec["triggers"]}


# --- today's values ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def baseline_chart(tmp_path_factory) -> Path:
    """The chart as it was before worker queues, from git."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", BASELINE, "charts/airflow-platform"],
        capture_output=True,
        check=True,
    ).stdout
    root = tmp_path_factory.mktemp("baseline")
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(root, filter="data")
    return root / "charts" / "airflow-platform"


def _objects_of(helm_bin: str, chart: Path, values_file: str) -> dict[tuple[str, str], dict]:
    import yaml

    done = subprocess.run(
        [
            helm_bin,
            "template",
            RELEASE,
            str(chart),
            "-n",
            NAMESPACE,
            "-f",
            str(CI_DIR / values_file),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    docs = [d for d in yaml.safe_load_all(done.stdout) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


@pytest.mark.parametrize(
    "values_file", ["default-values.yaml", "eks-values.yaml", "keda-off-values.yaml"]
)
def test_todays_values_render_the_default_worker_exactly_as_before(
    helm_bin: str, baseline_chart: Path, values_file: str
) -> None:
    """An upgrade with unchanged values leaves the default queue as it was before queues
    existed: the same autoscaler objects, the same worker command and environment, and no
    queue object. (Other features may change the rest of the pod; this pins what queues
    could have changed.)"""
    before = _objects_of(helm_bin, baseline_chart, values_file)
    after = _objects_of(helm_bin, CHART, values_file)
    scaling = {
        key
        for key, obj in before.items()
        if key[0] in ("ScaledObject", "HorizontalPodAutoscaler", "TriggerAuthentication")
        and obj["metadata"].get("labels", {}).get("app.kubernetes.io/component")
        in ("worker", "keda-database", "keda-aws")
    }
    for key in scaling:
        assert after.get(key) == before[key], key
    name = f"{RELEASE}-airflow-platform-worker"

    def worker(objects: dict) -> dict:
        pod = objects[("Deployment", name)]["spec"]["template"]["spec"]
        c = next(c for c in pod["containers"] if c["name"] == "worker")
        found = {k: c.get(k) for k in ("command", "args", "env", "envFrom", "resources")}
        found["env"] = [e for e in found["env"] or [] if e["name"] not in CHANGED_SINCE]
        return found

    assert worker(after) == worker(before)
    queue_objects = [
        key
        for key, obj in after.items()
        if "airflow-platform.io/worker-queue" in obj["metadata"].get("labels", {})
    ]
    assert queue_objects == []


def test_the_baseline_comparison_can_fail(helm_bin: str, baseline_chart: Path, tmp_path) -> None:
    changed = tmp_path / "chart"
    shutil.copytree(baseline_chart, changed)
    deployment = changed / "templates" / "workers" / "deployment.yaml"
    deployment.write_text(
        deployment.read_text().replace("revisionHistoryLimit: 5", "revisionHistoryLimit: 6")
    )
    assert _objects_of(helm_bin, changed, "default-values.yaml") != _objects_of(
        helm_bin, baseline_chart, "default-values.yaml"
    )


def test_no_queue_by_default(default) -> None:
    assert [
        d["metadata"]["name"]
        for d in default.all("Deployment")
        if "worker" in d["metadata"]["name"]
    ] == [f"{RELEASE}-airflow-platform-worker"]
    scheduler = container(default.one("Deployment", "scheduler"), "scheduler")
    assert env_values(scheduler)["AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__PREDEFINED_QUEUES"] == (
        '{"default":{"url":"' + URL + 'airflow-celery"}}'
    )


# --- one Deployment per queue --------------------------------------------------------------


def test_each_queue_gets_its_own_deployment_and_no_selector_overlaps(render) -> None:
    rendering = render(queues(GPU, ETL))
    workers = {
        d["metadata"]["labels"]["app.kubernetes.io/component"]: d
        for d in rendering.all("Deployment")
        if d["metadata"]["labels"]["app.kubernetes.io/component"].startswith("worker")
    }
    assert set(workers) == {"worker", "worker-gpu", "worker-etl"}
    assert workers["worker-gpu"]["metadata"]["name"] == f"{RELEASE}-airflow-platform-worker-gpu"
    for name, deployment in workers.items():
        selector = deployment["spec"]["selector"]["matchLabels"]
        for other, pod in workers.items():
            labels = pod["spec"]["template"]["metadata"]["labels"]
            selected = all(labels.get(k) == v for k, v in selector.items())
            assert selected == (name == other), (name, other)
    gpu_labels = workers["worker-gpu"]["spec"]["template"]["metadata"]["labels"]
    assert gpu_labels["airflow-platform.io/worker-queue"] == "gpu"


def test_a_queues_worker_consumes_that_queue_only(render) -> None:
    rendering = render(queues(GPU, ETL))
    assert container(rendering.one("Deployment", "worker-gpu"), "worker")["args"] == [
        "celery",
        "worker",
        "--skip-serve-logs",
        "--queues",
        "gpu",
    ]
    # The default queue's worker keeps Airflow's default_queue.
    assert "--queues" not in container(rendering.one("Deployment", "worker"), "worker")["args"]


def test_every_airflow_container_knows_every_queues_sqs_url(render) -> None:
    rendering = render(queues(GPU, ETL))
    expected = (
        '{"default":{"url":"' + URL + 'airflow-celery"},"etl":{"url":"' + URL + 'airflow-etl"},'
        '"gpu":{"url":"' + URL + 'airflow-gpu"}}'
    )
    for component in ("scheduler", "triggerer", "api-server", "worker", "worker-gpu"):
        env = env_values(
            container(
                rendering.one("Deployment", component),
                component.split("-")[0] if component.startswith("worker") else component,
            )
        )
        assert env["AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__PREDEFINED_QUEUES"] == expected, (
            component
        )


def test_queue_pods_run_as_workers(render) -> None:
    """Same service account (IRSA role, the agent's Role), secrets and component name as the
    default queue's workers: a queue changes where tasks run, not what they may do."""
    rendering = render(queues(GPU))
    default, gpu = rendering.one("Deployment", "worker"), rendering.one("Deployment", "worker-gpu")
    assert pod_spec(gpu)["serviceAccountName"] == pod_spec(default)["serviceAccountName"]
    assert container(gpu, "worker")["command"] == container(default, "worker")["command"]
    assert {e["name"] for e in container(gpu, "worker")["env"]} == {
        e["name"] for e in container(default, "worker")["env"]
    }


# --- scaling ------------------------------------------------------------------------------


def test_each_queue_scales_on_its_own_tasks_and_sqs_queue(render) -> None:
    rendering = render(queues(GPU, ETL))
    gpu = rendering.one("ScaledObject", "worker-gpu")["spec"]
    assert (
        gpu["scaleTargetRef"]["name"]
        == rendering.one("Deployment", "worker-gpu")["metadata"]["name"]
    )
    assert (gpu["minReplicaCount"], gpu["maxReplicaCount"]) == (0, 4)
    found = triggers(rendering, "worker-gpu")
    # mw1.large: 20 tasks per worker.
    assert found["running-and-queued"]["metadata"]["query"] == demand_query(
        20, queue_condition("gpu")
    )
    assert found["busy-workers"]["metadata"]["query"] == BUSY_WORKERS_QUERY + " AND queue = 'gpu'"
    assert found["sqs-backlog"]["metadata"]["queueURL"] == URL + "airflow-gpu"
    assert found["sqs-backlog"]["metadata"]["queueLength"] == "20"
    burst = gpu["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleUp"]["policies"]
    assert burst == [{"type": "Pods", "value": 4, "periodSeconds": 15}]


def test_the_default_queue_no_longer_counts_the_extra_queues_tasks(render) -> None:
    rendering = render(queues(GPU, ETL))
    found = triggers(rendering, "worker")
    condition = queue_condition(others=["gpu", "etl"])
    assert condition == " AND queue NOT IN ('gpu', 'etl')"
    assert found["running-and-queued"]["metadata"]["query"] == demand_query(5, condition)
    assert found["busy-workers"]["metadata"]["query"] == BUSY_WORKERS_QUERY + condition
    assert found["sqs-backlog"]["metadata"]["queueURL"] == URL + "airflow-celery"
    spec = rendering.one("ScaledObject", "worker")["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, 10)


def test_without_keda_each_queue_gets_a_cpu_hpa(render) -> None:
    rendering = render(queues(GPU), files=("keda-off-values.yaml",))
    assert rendering.all("ScaledObject") == []
    hpa = rendering.one("HorizontalPodAutoscaler", "worker-gpu")["spec"]
    assert (
        hpa["scaleTargetRef"]["name"]
        == rendering.one("Deployment", "worker-gpu")["metadata"]["name"]
    )
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (0, 4)
    assert rendering.one("HorizontalPodAutoscaler", "worker")["spec"]["minReplicas"] == 1


def test_hibernation_stops_every_queue(render) -> None:
    rendering = render({**queues(GPU), "hibernate": True})
    assert rendering.one("Deployment", "worker-gpu")["spec"]["replicas"] == 0
    annotations = rendering.one("ScaledObject", "worker-gpu")["metadata"]["annotations"]
    assert annotations["autoscaling.keda.sh/paused-replicas"] == "0"


def test_min_workers_defaults_to_zero_for_an_extra_queue(render) -> None:
    spec = render(queues(ETL)).one("ScaledObject", "worker-etl")["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (0, 3)


# --- size, placement, replacement ----------------------------------------------------------


def _worker(rendering, component: str) -> dict:
    return container(rendering.one("Deployment", component), "worker")


def test_size_from_an_environment_class(render) -> None:
    worker = _worker(render(queues(GPU)), "worker-gpu")
    assert worker["resources"]["requests"]["cpu"] == "4"
    assert worker["resources"]["limits"]["memory"] == "8Gi"
    assert env_values(worker)["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == "20"


def test_size_from_explicit_resources_and_tasks_per_worker(render) -> None:
    resources = {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    }
    rendering = render(queues({**ETL, "resources": resources, "tasksPerWorker": 2}))
    worker = _worker(rendering, "worker-etl")
    assert worker["resources"]["requests"]["cpu"] == "500m"
    assert env_values(worker)["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == "2"
    assert "/ 2)" in triggers(rendering, "worker-etl")["running-and-queued"]["metadata"]["query"]
    # The default queue keeps its own size.
    assert env_values(_worker(rendering, "worker"))["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == "5"


def test_without_a_size_a_queue_takes_the_workers(render) -> None:
    rendering = render(queues(ETL, tasksPerWorker=3))
    assert (
        _worker(rendering, "worker-etl")["resources"] == _worker(rendering, "worker")["resources"]
    )
    assert (
        env_values(_worker(rendering, "worker-etl"))["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == "3"
    )


def test_node_selector_and_tolerations_replace_the_workers(render) -> None:
    toleration = {"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}
    rendering = render(
        queues(
            {**GPU, "nodeSelector": {"pool": "gpu"}, "tolerations": [toleration]},
            ETL,
            nodeSelector={"pool": "airflow"},
        )
    )
    gpu = pod_spec(rendering.one("Deployment", "worker-gpu"))
    assert gpu["nodeSelector"] == {"pool": "gpu"}
    assert gpu["tolerations"] == [toleration]
    etl = pod_spec(rendering.one("Deployment", "worker-etl"))
    assert etl["nodeSelector"] == {"pool": "airflow"}
    assert "tolerations" not in etl


def test_replacement_strategy_per_queue(render) -> None:
    rendering = render(queues({**ETL, "replacementStrategy": "FORCED"}, GPU))
    etl, gpu = rendering.one("Deployment", "worker-etl"), rendering.one("Deployment", "worker-gpu")
    assert etl["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "100%", "maxUnavailable": 0}
    assert pod_spec(etl)["terminationGracePeriodSeconds"] == 30
    # Unset: the workers' GRACEFUL, 12 h + 60 s to drain.
    assert gpu["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": 0}
    assert pod_spec(gpu)["terminationGracePeriodSeconds"] == 43260


def test_drain_safe_shutdown_and_deletion_cost_agent_in_every_queue(render) -> None:
    rendering = render(queues(GPU))
    gpu = rendering.one("Deployment", "worker-gpu")
    names = [c["name"] for c in pod_spec(gpu)["containers"]]
    assert names == ["worker", "dagsync", "log-server", "worker-agent"]
    # The Celery settings that make SIGTERM a warm, lossless drain.
    env = env_values(_worker(rendering, "worker-gpu"))
    assert env["AIRFLOW__CELERY__TASK_ACKS_LATE"] == "True"
    assert env["AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER"] == "1"
    assert "worker_shutdown" in env["AIRFLOW__CELERY__EXTRA_CELERY_CONFIG"]
    # The agent's Role is bound to the workers' service account, which queue pods use.
    binding = next(
        r for r in rendering.all("RoleBinding") if r["metadata"]["name"].endswith("worker-agent")
    )
    assert binding["subjects"][0]["name"] == pod_spec(gpu)["serviceAccountName"]


def test_network_policy_of_every_queue(render) -> None:
    rendering = render(queues(GPU))
    default, gpu = (
        rendering.one("NetworkPolicy", "worker"),
        rendering.one("NetworkPolicy", "worker-gpu"),
    )
    assert gpu["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "worker-gpu"
    assert gpu["spec"]["egress"] == default["spec"]["egress"]
    assert gpu["spec"]["ingress"] == default["spec"]["ingress"]
    # The execution API and PgBouncer accept every queue's workers.
    (rule,) = rendering.one("NetworkPolicy", "execution-api")["spec"]["ingress"][:1]
    (peer,) = rule["from"]
    assert peer["podSelector"]["matchExpressions"] == [
        {"key": "app.kubernetes.io/component", "operator": "In", "values": ["worker", "worker-gpu"]}
    ]
    api = rendering.one("NetworkPolicy", "api-server")["spec"]["egress"]
    assert any(peer in r.get("to", []) for r in api)


def test_environment_config_map_lists_the_queues(render) -> None:
    data = render(queues(GPU)).one("ConfigMap", "environment")["data"]
    assert data["workerQueues"] == (
        '[{"maxWorkers":4,"minWorkers":0,"name":"gpu","sqsQueueUrl":"' + URL + 'airflow-gpu",'
        '"tasksPerWorker":20}]'
    )


def test_ci_example_renders_two_queues(render) -> None:
    rendering = render(files=("worker-queues-values.yaml",))
    assert {
        d["metadata"]["labels"]["app.kubernetes.io/component"]
        for d in rendering.all("ScaledObject")
    } == {
        "worker",
        "worker-gpu",
        "worker-etl",
    }


# --- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("queue", "expected"),
    [
        ({**GPU, "name": "GPU"}, "workers/queues/0/name"),
        ({**GPU, "name": "high_mem"}, "workers/queues/0/name"),
        ({**GPU, "name": "a-very-long-queue-name"}, "workers/queues/0/name"),
        ({**GPU, "name": "-gpu"}, "workers/queues/0/name"),
        ({**GPU, "name": "default"}, "workers.queues[0].name=default"),
        ({**GPU, "sqsQueueUrl": "sqs://airflow-gpu"}, "workers/queues/0/sqsQueueUrl"),
        ({k: v for k, v in GPU.items() if k != "sqsQueueUrl"}, "sqsQueueUrl"),
        ({k: v for k, v in GPU.items() if k != "maxWorkers"}, "maxWorkers"),
        ({**GPU, "minWorkers": -1}, "workers/queues/0/minWorkers"),
        ({**GPU, "maxWorkers": 0}, "workers/queues/0/maxWorkers"),
        (
            {**GPU, "minWorkers": 5},
            "workers.queues[0].minWorkers (5) is greater than its maxWorkers (4)",
        ),
        ({**GPU, "tasksPerWorker": 0}, "workers/queues/0/tasksPerWorker"),
        ({**GPU, "environmentClass": "mw1.huge"}, "workers/queues/0/environmentClass"),
        (
            {**GPU, "resources": {"requests": {"cpu": "1"}}},
            "sets both environmentClass and resources",
        ),
        ({**GPU, "replacementStrategy": "SOMETIMES"}, "workers/queues/0/replacementStrategy"),
        ({**GPU, "priority": 1}, "priority"),
        (
            {**GPU, "sqsQueueUrl": URL + "airflow-celery"},
            "already the SQS queue of the default queue",
        ),
    ],
)
def test_bad_queue_is_refused_naming_the_field(render, queue: dict, expected: str) -> None:
    with pytest.raises(HelmError) as refused:
        render(queues(queue))
    assert expected in refused.value.stderr


def test_queue_names_and_urls_must_be_unique(render) -> None:
    with pytest.raises(HelmError) as refused:
        render(queues(GPU, {**ETL, "name": "gpu"}))
    assert (
        'workers.queues[1].name="gpu" is already the name of workers.queues[0]'
        in refused.value.stderr
    )
    with pytest.raises(HelmError) as refused:
        render(queues(GPU, {**ETL, "sqsQueueUrl": GPU["sqsQueueUrl"]}))
    assert (
        'workers.queues[1].sqsQueueUrl is already the SQS queue of queue "gpu"'
        in refused.value.stderr
    )


def test_the_default_queue_keeps_its_minimum_of_one(render) -> None:
    with pytest.raises(HelmError) as refused:
        render(queues(GPU, minWorkers=0))
    assert "workers/minWorkers" in refused.value.stderr
