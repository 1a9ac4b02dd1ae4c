"""Metadata retention: `airflow db clean` on a schedule, bounded and never twice at once.

`airflow db clean` deletes rows older than a timestamp table by table. Around it:
- a PostgreSQL advisory lock, so two runs (a slow one and the next schedule, or a manual run)
  never clean concurrently; the second exits at once;
- PGOPTIONS with lock_timeout and statement_timeout, which libpq sends at connect, so a DELETE
  waiting behind a running scheduler's lock gives up instead of queueing the scheduler behind it;
- DAG runs still queued or running are kept: db clean selects dag_run and task_instance rows by
  start date alone and would delete a run in progress that started before the cutoff, so the
  cutoff moves back to just before the oldest such run's start (the report names it). Cleaning
  the other DAGs further with --exclude-dag-ids is not possible on Airflow 3.3.2: its dag_id
  filter fails on tables without that column (asset_event, deadline, task_reschedule).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

# Key of the advisory lock (any bigint; "airflow-platform retention").
LOCK_KEY = 4_170_652_118_437_205_329
UNFINISHED_RUN_STATES = ("queued", "running")
# Tables whose rows are counted in the report (those db clean may delete from).
REPORTED_TABLES = (
    "dag_run",
    "task_instance",
    "task_instance_history",
    "log",
    "xcom",
    "job",
    "import_error",
    "callback_request",
    "callback",
    "task_reschedule",
    "rendered_task_instance_fields",
    "sla_miss",
    "trigger",
    "dag_version",
    "deadline",
    "asset_event",
    "celery_taskmeta",
    "celery_tasksetmeta",
)


class RetentionError(RuntimeError):
    pass


class RetentionBusy(RetentionError):
    """Another retention run holds the lock."""


@dataclass(frozen=True)
class RetentionPlan:
    retention_days: int = 60
    tables: tuple[str, ...] = ()  # () = every table db clean knows
    skip_archive: bool = True
    drop_archives: bool = False
    dry_run: bool = False
    lock_timeout_seconds: int = 10
    statement_timeout_seconds: int = 600


@dataclass
class RetentionReport:
    cutoff: datetime
    held_back_by: tuple[str, str, datetime] | None  # the unfinished run that moved the cutoff
    dry_run: bool
    before: dict[str, int] = field(default_factory=dict)
    after: dict[str, int] = field(default_factory=dict)

    @property
    def deleted(self) -> dict[str, int]:
        return {t: self.before[t] - self.after.get(t, 0) for t in self.before}

    def as_dict(self) -> dict[str, object]:
        return {
            "cutoff": self.cutoff.isoformat(),
            "heldBackBy": None
            if self.held_back_by is None
            else {
                "dagId": self.held_back_by[0],
                "runId": self.held_back_by[1],
                "startDate": self.held_back_by[2].isoformat(),
            },
            "dryRun": self.dry_run,
            "before": self.before,
            "after": self.after,
            "deleted": self.deleted,
        }


def pgoptions(plan: RetentionPlan, existing: str = "") -> str:
    timeouts = (
        f"-c lock_timeout={plan.lock_timeout_seconds * 1000} "
        f"-c statement_timeout={plan.statement_timeout_seconds * 1000}"
    )
    return f"{existing} {timeouts}".strip()


def held_back_by(conn: sa.Connection, cutoff: datetime) -> tuple[str, str, datetime] | None:
    """The oldest DAG run still queued or running that started before `cutoff`: (dag_id,
    run_id, start), or None."""
    row = conn.execute(
        sa.text(
            "SELECT dag_id, run_id, start_date FROM dag_run "
            "WHERE state IN :states AND start_date <= :cutoff ORDER BY start_date LIMIT 1"
        ).bindparams(sa.bindparam("states", expanding=True)),
        {"states": list(UNFINISHED_RUN_STATES), "cutoff": cutoff},
    ).first()
    return None if row is None else (row[0], row[1], row[2])


def row_counts(conn: sa.Connection, tables: Sequence[str] = REPORTED_TABLES) -> dict[str, int]:
    present = set(sa.inspect(conn).get_table_names())
    return {
        t: int(conn.execute(sa.text(f'SELECT count(*) FROM "{t}"')).scalar() or 0)
        for t in tables
        if t in present
    }


def clean_command(plan: RetentionPlan, cutoff: datetime, airflow: str = "airflow") -> list[str]:
    argv = [airflow, "db", "clean", "--clean-before-timestamp", cutoff.isoformat(), "--yes"]
    argv.append("--error-on-cleanup-failure")
    if plan.tables:
        argv += ["--tables", ",".join(plan.tables)]
    if plan.skip_archive:
        argv.append("--skip-archive")
    if plan.dry_run:
        argv.append("--dry-run")
    return argv


def _airflow(argv: list[str], env: Mapping[str, str], timeout: float) -> None:
    done = subprocess.run(argv, env=dict(env), capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout)[-2000:]
        raise RetentionError(f"{' '.join(argv[:3])} failed (exit {done.returncode}):\n{tail}")


def run_retention(
    database_url: str,
    plan: RetentionPlan,
    env: Mapping[str, str] | None = None,
    now: datetime | None = None,
    airflow: str = "airflow",
) -> RetentionReport:
    """One retention run against the metadata database at `database_url` (Airflow's
    SQLAlchemy URL); `env` is the environment `airflow` runs with (Airflow's configuration)."""
    base = dict(os.environ if env is None else env)
    base["PGOPTIONS"] = pgoptions(plan, base.get("PGOPTIONS", ""))
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as lock:
            # The lock holder's own queries (the row counts) are bounded like the deletes.
            lock.exec_driver_sql(f"SET lock_timeout = {plan.lock_timeout_seconds * 1000}")
            lock.exec_driver_sql(f"SET statement_timeout = {plan.statement_timeout_seconds * 1000}")
            taken = lock.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY})
            lock.commit()
            if not taken.scalar():
                raise RetentionBusy("another retention run holds the lock; nothing done")
            try:
                return _clean(lock, plan, base, now or datetime.now(UTC), airflow)
            finally:
                lock.rollback()
                lock.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
                lock.commit()
    except sa.exc.OperationalError as exc:
        raise RetentionError(f"retention query failed: {exc.orig}") from exc
    finally:
        engine.dispose()


def _clean(
    lock: sa.Connection, plan: RetentionPlan, env: dict[str, str], now: datetime, airflow: str
) -> RetentionReport:
    cutoff = now - timedelta(days=plan.retention_days)
    held = held_back_by(lock, cutoff)
    if held is not None:
        cutoff = held[2] - timedelta(seconds=1)
    report = RetentionReport(cutoff, held, plan.dry_run, before=row_counts(lock))
    lock.commit()
    budget = plan.statement_timeout_seconds * 4 + 300
    _airflow(clean_command(plan, cutoff, airflow), env, budget)
    if plan.drop_archives and not plan.dry_run:
        tables = ["--tables", ",".join(plan.tables)] if plan.tables else []
        _airflow([airflow, "db", "drop-archived", "--yes", *tables], env, budget)
    report.after = row_counts(lock)
    lock.commit()
    return report
