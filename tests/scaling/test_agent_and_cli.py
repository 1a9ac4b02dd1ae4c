"""The deletion-cost agent's logic, the worker env and grace periods, and the CLI commands."""

from __future__ import annotations

import json
import threading

import pytest
from typer.testing import CliRunner

from airflow_platform.cli import app
from airflow_platform.scaling.celery_settings import (
    FORCED_GRACE_SECONDS,
    ReplacementStrategy,
    termination_grace_seconds,
    worker_celery_environment,
)
from airflow_platform.scaling.deletion_cost import DeletionCostAgent, deletion_cost
from airflow_platform.scaling.keda import scaled_object_spec
from airflow_platform.scaling.policy import PolicyConfig

runner = CliRunner()


class Counts:
    """A scripted task count per step; raises where the script says the DB is down."""

    def __init__(self, script: list[int | Exception]) -> None:
        self.script = list(script)

    def __call__(self) -> int:
        value = self.script.pop(0)
        if isinstance(value, Exception):
            raise value
        return value


def test_cost_is_the_task_count_clamped_to_int32():
    assert [deletion_cost(n) for n in (0, 1, 7, -3, 2**40)] == [0, 1, 7, 0, 2**31 - 1]


def test_agent_writes_first_then_only_on_change():
    written: list[int] = []
    agent = DeletionCostAgent(Counts([0, 0, 3, 3, 2, 0, 0]), written.append)
    patched = [agent.step().patched_cost for _ in range(7)]
    assert patched == [0, None, 3, None, 2, 0, None]
    assert written == [0, 3, 2, 0]


def test_agent_keeps_the_cost_when_counting_fails_and_retries_failed_writes():
    attempts: list[int] = []
    fail_next = [True]

    def write(cost: int) -> None:
        attempts.append(cost)
        if fail_next.pop(0) if fail_next else False:
            raise RuntimeError("apiserver unavailable")

    agent = DeletionCostAgent(Counts([2, RuntimeError("db down"), 2, 2, 0]), write)
    results = [agent.step() for _ in range(5)]
    assert [r.patched_cost for r in results] == [None, None, 2, None, 0]
    assert results[0].error and "write failed" in results[0].error
    assert results[1].error and "count failed" in results[1].error
    assert attempts == [2, 2, 0]
    assert agent.written_cost == 0


def test_agent_run_loop_stops_on_event():
    stop = threading.Event()
    seen: list[int | None] = []

    def on_step(result) -> None:
        seen.append(result.patched_cost)
        if len(seen) == 3:
            stop.set()

    DeletionCostAgent(Counts([1, 1, 4]), lambda _: None).run(0.01, stop, on_step)
    assert seen == [1, None, 4]


def test_worker_env_has_the_drain_settings():
    env = worker_celery_environment(tasks_per_worker=5, visibility_timeout=43200)
    assert env["AIRFLOW__CELERY__TASK_ACKS_LATE"] == "True"
    assert env["AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER"] == "1"
    assert env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == "5"
    assert env["AIRFLOW__CELERY__WORKER_ENABLE_REMOTE_CONTROL"] == "False"
    assert env["AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT"] == "43200"
    assert json.loads(env["AIRFLOW__CELERY__EXTRA_CELERY_CONFIG"]) == {
        "worker_soft_shutdown_timeout": 0,
        "imports": ["airflow_platform.scaling.worker_shutdown"],
    }


def test_the_worker_shutdown_module_adds_its_step_to_a_worker_s_consumer():
    # What a worker does with the platform's `imports`, before it builds its consumer.
    from celery import Celery

    from airflow_platform.scaling.worker_shutdown import StopReceivingOnShutdown

    app = Celery(
        "probe",
        config_source={
            "broker_url": "memory://",
            **json.loads(
                worker_celery_environment(1, 43200)["AIRFLOW__CELERY__EXTRA_CELERY_CONFIG"]
            ),
        },
    )
    worker = app.Worker(pool="solo", quiet=True)
    steps = worker.consumer.blueprint.steps
    assert isinstance(steps[StopReceivingOnShutdown.name], StopReceivingOnShutdown)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"tasks_per_worker": 0, "visibility_timeout": 100}, "tasks_per_worker"),
        ({"tasks_per_worker": 1, "visibility_timeout": 0}, "celery.visibilityTimeout"),
        ({"tasks_per_worker": 1, "visibility_timeout": 43201}, "celery.visibilityTimeout"),
    ],
)
def test_worker_env_rejects_bad_values(kwargs, field):
    with pytest.raises(ValueError, match=field):
        worker_celery_environment(**kwargs)


def test_grace_period_follows_the_replacement_strategy():
    assert termination_grace_seconds("GRACEFUL", 43200, 43200) == 43260
    assert termination_grace_seconds(ReplacementStrategy.GRACEFUL, 600, 43200) == 660
    assert termination_grace_seconds("FORCED", 43200, 43200) == FORCED_GRACE_SECONDS
    with pytest.raises(ValueError, match="gracefulTimeoutSeconds"):
        termination_grace_seconds("GRACEFUL", 7200, 3600)
    with pytest.raises(ValueError, match="gracefulTimeoutSeconds"):
        termination_grace_seconds("GRACEFUL", 0, 3600)
    with pytest.raises(ValueError, match="GENTLE"):
        termination_grace_seconds("GENTLE", 60, 3600)


def test_decide_command_prints_each_decision(tmp_path):
    trace = tmp_path / "trace.jsonl"
    rows = [
        {"at": 0, "queued": 12, "current_workers": 1},
        {"at": 10, "running": 9, "queued": 3, "busy_workers": 3, "current_workers": 3},
        {"at": 20, "current_workers": 3},
        {"at": 140, "current_workers": 3},
    ]
    trace.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result = runner.invoke(
        app,
        ["scaling", "decide", "--trace", str(trace), "--max-workers", "3",
         "--tasks-per-worker", "3", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    decisions = [json.loads(line) for line in result.output.splitlines()]
    assert [(d["desired"], d["action"]) for d in decisions] == [
        (3, "scale_up"),
        (3, "hold"),
        (3, "hold"),
        (1, "scale_in"),
    ]
    table = runner.invoke(app, ["scaling", "decide", "--trace", str(trace)])
    assert table.exit_code == 0 and "scale_up" in table.output


def test_decide_command_names_the_bad_line(tmp_path):
    trace = tmp_path / "trace.jsonl"
    trace.write_text('{"at": 0, "current_workers": 1}\n{"at": 1}\n')
    result = runner.invoke(app, ["scaling", "decide", "--trace", str(trace)])
    assert result.exit_code != 0
    assert "line 2" in result.output and "current_workers" in result.output


def test_decide_command_rejects_bad_limits(tmp_path):
    trace = tmp_path / "trace.jsonl"
    trace.write_text('{"at": 0, "current_workers": 1}\n')
    result = runner.invoke(
        app,
        ["scaling", "decide", "--trace", str(trace), "--min-workers", "4", "--max-workers", "2"],
    )
    assert result.exit_code != 0 and "max_workers" in result.output


def test_celery_env_command_prints_the_variables():
    result = runner.invoke(app, ["scaling", "celery-env", "--tasks-per-worker", "10"])
    assert result.exit_code == 0
    assert "AIRFLOW__CELERY__WORKER_CONCURRENCY=10" in result.output.splitlines()


def test_worker_agent_requires_pod_identity(monkeypatch):
    monkeypatch.delenv("POD_NAME", raising=False)
    monkeypatch.delenv("POD_NAMESPACE", raising=False)
    result = runner.invoke(
        app, ["scaling", "worker-agent", "--database-url", "postgresql+psycopg2://x@h/db"]
    )
    assert result.exit_code != 0
    assert "POD_NAME" in result.output and "POD_NAMESPACE" in result.output


def test_scaled_object_spec_mirrors_the_policy():
    cfg = PolicyConfig(min_workers=2, max_workers=7, tasks_per_worker=4, scale_in_idle_seconds=90)
    spec = scaled_object_spec(cfg, polling_interval=5)
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (2, 7)
    behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 90
    assert behavior["scaleUp"]["policies"] == [{"type": "Pods", "value": 7, "periodSeconds": 15}]
    assert "tolerance" not in behavior["scaleUp"]
    assert [t["metadata"]["targetQueryValue"] for t in spec["triggers"]] == ["1", "1"]
    assert "/ 4)" in spec["triggers"][0]["metadata"]["query"]
    tolerant = scaled_object_spec(cfg, with_tolerance=True)
    behavior = tolerant["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleUp"]["tolerance"] == behavior["scaleDown"]["tolerance"] == "0"
