"""Celery workers: KEDA with MWAA's formula, the HPA fallback, graceful replacement and
probes that never use Celery remote control (SQS has none)."""

from __future__ import annotations

import pytest

from airflow_platform.scaling.keda import demand_query

from .conftest import container, env_values, pod_spec

pytestmark = pytest.mark.chart


def _postgres_trigger(rendering) -> dict:
    triggers = rendering.one("ScaledObject", "worker")["spec"]["triggers"]
    return next(t for t in triggers if t["name"] == "running-and-queued")


def test_scaled_object_targets_the_worker_deployment_within_min_and_max(eks) -> None:
    spec = eks.one("ScaledObject", "worker")["spec"]
    assert spec["scaleTargetRef"]["name"] == eks.one("Deployment", "worker")["metadata"]["name"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (2, 20)
    assert spec["pollingInterval"] == 5
    assert "replicas" not in eks.one("Deployment", "worker")["spec"]


def test_trigger_query_is_mwaa_formula_with_the_class_tasks_per_worker(eks) -> None:
    trigger = _postgres_trigger(eks)
    # mw1.medium runs 10 tasks per worker; the HPA divides by the target of 1 per worker.
    assert trigger["metadata"] == {"query": demand_query(10), "targetQueryValue": "1"}
    assert "/ 10)" in trigger["metadata"]["query"]


def test_explicit_tasks_per_worker_wins_in_the_formula_and_concurrency(render) -> None:
    rendering = render({"workers": {"tasksPerWorker": 7}})
    assert _postgres_trigger(rendering)["metadata"]["query"] == demand_query(7)
    worker = container(rendering.one("Deployment", "worker"), "worker")
    assert env_values(worker)["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == "7"


def test_scale_in_waits_for_the_idle_period(default, render) -> None:
    behavior = default.one("ScaledObject", "worker")["spec"]["advanced"][
        "horizontalPodAutoscalerConfig"
    ]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 120
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0
    custom = render({"workers": {"scaleInIdleSeconds": 300}}).one("ScaledObject", "worker")
    assert (
        custom["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"][
            "stabilizationWindowSeconds"
        ]
        == 300
    )


def test_formula_reads_the_database_directly_not_through_pgbouncer(render) -> None:
    rendering = render(files=("pgbouncer-values.yaml",))
    trigger = _postgres_trigger(rendering)
    auth = next(
        a
        for a in rendering.all("TriggerAuthentication")
        if a["metadata"]["name"] == trigger["authenticationRef"]["name"]
    )
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "connection", "name": "airflow-database-direct", "key": "connection"}
    ]
    # The Airflow components go through PgBouncer; KEDA and migrations do not.
    scheduler = container(rendering.one("Deployment", "scheduler"), "scheduler")
    conn = {e["name"]: e for e in scheduler["env"]}["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert conn["valueFrom"]["secretKeyRef"]["name"] == "airflow-database-pgbouncer"
    # The result backend's own role, as named in values.
    worker = container(rendering.one("Deployment", "worker"), "worker")
    backend = {e["name"]: e for e in worker["env"]}["AIRFLOW_PLATFORM_RESULT_BACKEND_URL"]
    assert backend["valueFrom"]["secretKeyRef"]["name"] == "airflow-results"


def test_keda_database_defaults_to_the_database_secret(default) -> None:
    auth = default.one("TriggerAuthentication", "keda-database")
    assert auth["spec"]["secretTargetRef"][0]["name"] == "airflow-database"


def test_sqs_backlog_trigger_uses_pod_identity(eks) -> None:
    triggers = eks.one("ScaledObject", "worker")["spec"]["triggers"]
    sqs = next(t for t in triggers if t["type"] == "aws-sqs-queue")
    assert sqs["metadata"]["queueURL"].endswith("/analytics-prod-celery")
    assert sqs["metadata"]["queueLength"] == "10"
    auth = eks.one("TriggerAuthentication", "keda-aws")
    assert sqs["authenticationRef"]["name"] == auth["metadata"]["name"]
    assert auth["spec"] == {"podIdentity": {"provider": "aws", "identityOwner": "workload"}}


def test_hpa_fallback_when_keda_is_off(render) -> None:
    rendering = render(files=("keda-off-values.yaml",))
    assert rendering.all("ScaledObject") == []
    assert rendering.all("TriggerAuthentication") == []
    hpa = rendering.one("HorizontalPodAutoscaler", "worker")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 10)
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 120


@pytest.mark.parametrize(("strategy", "seconds"), [("GRACEFUL", 43200 + 60), ("FORCED", 30)])
def test_termination_grace_follows_the_replacement_strategy(render, strategy, seconds) -> None:
    worker = render({"workers": {"replacementStrategy": strategy}}).one("Deployment", "worker")
    assert pod_spec(worker)["terminationGracePeriodSeconds"] == seconds


def test_worker_probes_do_not_use_celery_remote_control(default) -> None:
    worker = container(default.one("Deployment", "worker"), "worker")
    probes = str({k: worker[k] for k in ("livenessProbe", "readinessProbe")})
    assert "inspect" not in probes and "ping" not in probes
    assert "celery worker" in " ".join(worker["livenessProbe"]["exec"]["command"])
    assert worker["readinessProbe"]["exec"] == worker["livenessProbe"]["exec"]
    assert env_values(worker)["AIRFLOW__CELERY__WORKER_ENABLE_REMOTE_CONTROL"] == "False"
    # Logs are served by the pod's log-server container, ready once it answers.
    assert worker["args"] == ["celery", "worker", "--skip-serve-logs"]
    log_server = container(default.one("Deployment", "worker"), "log-server")
    assert log_server["readinessProbe"]["tcpSocket"] == {"port": "logs"}
