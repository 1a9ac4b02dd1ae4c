"""Demand from a real PostgreSQL whose task_instance table `airflow db migrate` created."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from airflow_platform.cli import app
from airflow_platform.scaling.deletion_cost import DeletionCostAgent
from airflow_platform.scaling.demand import Demand, make_engine, read_demand, running_on_host
from airflow_platform.scaling.keda import scaled_object_spec
from airflow_platform.scaling.policy import PolicyConfig

pytestmark = [pytest.mark.integration]


RUN_ID = "scaling-test-run"


@pytest.fixture
def db(airflow_db: str) -> Iterator[sa.Engine]:
    engine = make_engine(airflow_db)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM task_instance"))
        conn.execute(sa.text("DELETE FROM dag_run"))
        conn.execute(
            sa.text(
                "INSERT INTO dag_run (dag_id, run_id, run_type, run_after)"
                " VALUES ('burst', :run, 'manual', now())"
            ),
            {"run": RUN_ID},
        )
    yield engine
    engine.dispose()


def add_tis(engine: sa.Engine, rows: list[tuple[str | None, str | None, str]]) -> None:
    """rows: (state, hostname, queue)."""
    with engine.begin() as conn:
        for state, host, queue in rows:
            conn.execute(
                sa.text(
                    "INSERT INTO task_instance (id, task_id, dag_id, run_id, try_number, pool,"
                    " pool_slots, state, hostname, queue)"
                    " VALUES (:id, :task, 'burst', :run, 1, 'default_pool', 1, :state, :host,"
                    " :queue)"
                ),
                {
                    "id": str(uuid.uuid4()),
                    "task": f"t-{uuid.uuid4().hex[:8]}",
                    "run": RUN_ID,
                    "state": state,
                    "host": host,
                    "queue": queue,
                },
            )


def set_state(engine: sa.Engine, host: str, state: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE task_instance SET state = :state WHERE hostname = :host"),
            {"state": state, "host": host},
        )


def test_counts_running_and_queued_and_busy_hosts(db):
    add_tis(
        db,
        [
            ("running", "worker-a", "default"),
            ("running", "worker-a", "default"),
            ("running", "worker-b", "default"),
            ("running", None, "default"),  # started, not reported in yet
            ("queued", "worker-c", "default"),  # stale host from an earlier try: not busy
            ("queued", "", "default"),
            ("queued", None, "other"),
            ("success", "worker-c", "default"),
            ("deferred", "worker-c", "default"),
            ("scheduled", None, "default"),
            ("up_for_retry", "worker-d", "default"),
        ],
    )
    found = read_demand(db)
    assert found == Demand(running=4, queued=3, running_by_host={"worker-a": 2, "worker-b": 1})
    assert found.busy_workers == 2
    only_default = read_demand(db, ["default"])
    assert (only_default.running, only_default.queued) == (4, 2)
    assert read_demand(db, ["other", "nope"]).queued == 1
    # The default queue's workers with an extra queue `other`: every queue but that one.
    all_but_other = read_demand(db, exclude=["other"])
    assert (all_but_other.running, all_but_other.queued) == (4, 2)
    assert read_demand(db, exclude=["default", "other"]) == Demand(0, 0, {})


def test_empty_database_means_no_demand(db):
    assert read_demand(db) == Demand(0, 0, {})
    assert running_on_host(db, "worker-a") == 0


def test_running_on_host_counts_only_that_worker(db):
    add_tis(db, [("running", "w1", "default")] * 3 + [("running", "w2", "default")])
    assert running_on_host(db, "w1") == 3
    assert running_on_host(db, "w2") == 1
    assert running_on_host(db, "w3") == 0


def test_agent_follows_the_database_and_writes_only_changes(db):
    written: list[int] = []
    agent = DeletionCostAgent(lambda: running_on_host(db, "w1"), written.append)
    assert agent.step().patched_cost == 0  # first step always writes
    add_tis(db, [("running", "w1", "default")] * 2 + [("running", "w2", "default")])
    assert agent.step().patched_cost == 2
    assert agent.step().patched_cost is None
    set_state(db, "w1", "success")
    assert agent.step().patched_cost == 0
    assert written == [0, 2, 0]


def test_demand_command_prints_counts_and_target(db, airflow_db):
    add_tis(db, [("running", "w1", "default")] * 4 + [("queued", None, "default")] * 7)
    result = CliRunner().invoke(
        app,
        ["scaling", "demand", "--database-url", airflow_db, "--tasks-per-worker", "5"],
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed == {
        "running": 4,
        "queued": 7,
        "busy_workers": 1,
        "running_by_host": {"w1": 4},
        "target_workers": 3,
    }


def test_demand_command_rejects_a_bad_database_url():
    result = CliRunner().invoke(app, ["scaling", "demand", "--database-url", "nonsense://x"])
    assert result.exit_code != 0
    assert "--database-url" in result.output


def test_keda_queries_compute_the_policy_formula_and_busy_floor(db):
    cfg = PolicyConfig(min_workers=1, max_workers=10, tasks_per_worker=5)
    add_tis(
        db,
        [("running", "w1", "default")] * 3
        + [("running", "w2", "default"), ("running", None, "default")]
        + [("queued", None, "default")] * 7
        + [("success", "w3", "default")],
    )
    spec = scaled_object_spec(cfg)
    queries = {t["name"]: t["metadata"]["query"] for t in spec["triggers"]}
    with db.connect() as conn:
        demand_metric = conn.execute(sa.text(queries["running-and-queued"])).scalar_one()
        busy_metric = conn.execute(sa.text(queries["busy-workers"])).scalar_one()
    found = read_demand(db)
    assert int(demand_metric) == cfg.target(found.running, found.queued) == 3  # ceil(12 / 5)
    assert busy_metric == found.busy_workers == 2
