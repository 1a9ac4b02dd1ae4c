"""Metadata retention on a real PostgreSQL with Airflow's own schema (`airflow db migrate`) and
seeded history: `airflow db clean` runs for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from embedded_pg import EmbeddedPostgres, migrate_airflow_db

from airflow_platform.local.state import StateDir
from airflow_platform.ops.retention import (
    LOCK_KEY,
    RetentionBusy,
    RetentionError,
    RetentionPlan,
    run_retention,
)

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
HISTORY_AGES = (200, 100, 70, 61, 59, 30, 1)  # days; DAG "history", all finished
LONG_RUN_AGE = 65  # DAG "long": a run still running, started 65 days ago
LONG_FINISHED_AGES = (120, 80)  # and two finished runs of that DAG, older than it


@pytest.fixture(scope="module")
def airflow_db(postgres: EmbeddedPostgres, tmp_path_factory) -> tuple[str, dict[str, str]]:
    url = postgres.create_database("airflow")
    home = tmp_path_factory.mktemp("airflow-home")
    migrate_airflow_db(url, home)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env.update(AIRFLOW_HOME=str(home), AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=url)
    env["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    return url, env


def _run(conn: sa.Connection, dag_id: str, age_days: int, state: str) -> str:
    start = NOW - timedelta(days=age_days)
    run_id = f"scheduled__{age_days}d"
    conn.execute(
        sa.text(
            "INSERT INTO dag_run (dag_id, run_id, run_type, state, start_date, end_date,"
            " logical_date, run_after, queued_at)"
            " VALUES (:d, :r, 'scheduled', :s, :t, :e, :t, :t, :t)"
        ),
        {
            "d": dag_id,
            "r": run_id,
            "s": state,
            "t": start,
            "e": None if state == "running" else start,
        },
    )
    conn.execute(
        sa.text(
            "INSERT INTO task_instance (id, task_id, dag_id, run_id, try_number, pool,"
            " pool_slots, state, start_date)"
            " VALUES (gen_random_uuid(), 'work', :d, :r, 1, 'default_pool', 1, :s, :t)"
        ),
        {"d": dag_id, "r": run_id, "s": "running" if state == "running" else "success", "t": start},
    )
    conn.execute(
        sa.text("INSERT INTO log (event, dag_id, run_id, dttm) VALUES ('seed', :d, :r, :t)"),
        {"d": dag_id, "r": run_id, "t": start},
    )
    return run_id


@pytest.fixture
def seeded(airflow_db) -> str:
    url, _ = airflow_db
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE dag_run, task_instance, log CASCADE"))
        for age in HISTORY_AGES:
            _run(conn, "history", age, "success")
        _run(conn, "long", LONG_RUN_AGE, "running")
        for age in LONG_FINISHED_AGES:
            _run(conn, "long", age, "success")
    engine.dispose()
    return url


def _runs(url: str) -> set[tuple[str, str]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT dag_id, run_id FROM dag_run")).all()
    engine.dispose()
    return {(d, r) for d, r in rows}


def _count(url: str, table: str) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        count = conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar()
    engine.dispose()
    return int(count or 0)


def test_old_history_goes_newer_and_unfinished_runs_stay(airflow_db, seeded) -> None:
    url, env = airflow_db
    report = run_retention(url, RetentionPlan(retention_days=60), env=env, now=NOW)
    runs = _runs(url)
    # The run in progress (65 days old) moves the cutoff back to just before its start: the
    # 61-day-old run waits for it; everything older goes, everything newer stays.
    for age in HISTORY_AGES:
        assert (("history", f"scheduled__{age}d") in runs) == (age < LONG_RUN_AGE), age
    assert ("long", f"scheduled__{LONG_RUN_AGE}d") in runs
    for age in LONG_FINISHED_AGES:
        assert ("long", f"scheduled__{age}d") not in runs
    assert report.held_back_by is not None and report.held_back_by[0] == "long"
    assert report.cutoff == NOW - timedelta(days=LONG_RUN_AGE, seconds=1)
    for table in ("dag_run", "task_instance"):
        assert (report.before[table], report.after[table]) == (10, 5), table
    # Airflow's CLI records each `db clean` in the log table itself.
    assert _count(url, "log WHERE event = 'seed'") == 5
    print("retention row counts", report.as_dict())


def test_without_unfinished_runs_the_cutoff_is_the_retention_period(airflow_db, seeded) -> None:
    url, env = airflow_db
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE dag_run SET state = 'failed' WHERE state = 'running'"))
    engine.dispose()
    report = run_retention(url, RetentionPlan(retention_days=60), env=env, now=NOW)
    assert report.held_back_by is None
    # db clean keeps each DAG's latest scheduled run, however old.
    kept = {("history", f"scheduled__{a}d") for a in (59, 30, 1)} | {("long", "scheduled__65d")}
    assert _runs(url) == kept
    assert report.after["dag_run"] == 4


def test_a_dry_run_deletes_nothing(airflow_db, seeded) -> None:
    url, env = airflow_db
    report = run_retention(url, RetentionPlan(retention_days=60, dry_run=True), env=env, now=NOW)
    assert report.after["dag_run"] == report.before["dag_run"] == 10
    assert len(_runs(url)) == 10


def test_a_second_run_while_one_holds_the_lock_does_nothing(airflow_db, seeded) -> None:
    url, env = airflow_db
    engine = sa.create_engine(url)
    with engine.connect() as holder:
        holder.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": LOCK_KEY})
        with pytest.raises(RetentionBusy):
            run_retention(url, RetentionPlan(retention_days=60), env=env, now=NOW)
    engine.dispose()
    assert len(_runs(url)) == 10


def test_a_locked_table_fails_the_run_after_the_lock_timeout(airflow_db, seeded) -> None:
    """A transaction holding the log table against writes (as a long transaction holds the rows
    it changed) makes db clean give up after lock_timeout instead of waiting for it."""
    url, env = airflow_db
    engine = sa.create_engine(url)
    holder = engine.connect()
    holder.execute(sa.text("LOCK TABLE log IN EXCLUSIVE MODE"))
    plan = RetentionPlan(retention_days=60, tables=("log",), lock_timeout_seconds=1)
    started = time.monotonic()
    try:
        with pytest.raises(RetentionError, match=r"did not clean them: \['log'\]"):
            run_retention(url, plan, env=env, now=NOW)
    finally:
        holder.rollback()
        holder.close()
        engine.dispose()
    # Bounded by lock_timeout, not by the holder (which never lets go during the run).
    assert time.monotonic() - started < 120
    assert _count(url, "log") == 10


def test_local_retention_runs_with_the_local_schedulers_environment(airflow_db, seeded, tmp_path):
    """`airflow-platform local retention` takes the database and configuration from the local
    platform's launch records (here written as `local up` writes them)."""
    url, env = airflow_db
    state = StateDir.at(tmp_path / "state")
    scheduler_env = {k: env[k] for k in ("AIRFLOW_HOME", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")}
    state.save({"launch": {"scheduler-1": {"component": "scheduler", "env": scheduler_env}}})
    cli = Path(sys.executable).parent / "airflow-platform"
    argv = [str(cli), "local", "retention", "--state-dir", str(tmp_path / "state"), "--dry-run"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["dryRun"] is True and report["before"]["dag_run"] == 10
    assert report["heldBackBy"]["dagId"] == "long"
    assert len(_runs(url)) == 10
