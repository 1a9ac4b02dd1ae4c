"""Metadata retention: `airflow db clean` on a schedule, bounded and never twice at once.

`airflow db clean` deletes rows older than a timestamp table by table. Around it:
- a PostgreSQL advisory lock, so two runs (a slow one and the next schedule, or a manual run)
  never clean concurrently; the second exits at once;
- PGOPTIONS with lock_timeout and statement_timeout, which libpq sends at connect, so a DELETE
  waiting behind a running scheduler's lock gives up instead of queueing the scheduler behind it;
- DAG runs still queued or running are kept: db clean selects dag_run and task_instance rows by
  start date alone and would delete a run in progress that started before the cutoff. A DAG
  with such a run is cleaned in a pass of its own, up to just before that run's start; every
  other DAG gets the full cutoff.
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
    pinned: dict[str, datetime]  # DAG -> its own cutoff (a run of it is still unfinished)
    dry_run: bool
    before: dict[str, int] = field(default_factory=dict)
    after: dict[str, int] = field(default_factory=dict)

    @property
    def deleted(self) -> dict[str, int]:
        return {t: self.before[t] - self.after.get(t, 0) for t in self.before}

    def as_dict(self) -> dict[str, object]:
        return {
            "cutoff": self.cutoff.isoformat(),
            "pinnedByUnfinishedRuns": {d: c.isoformat() for d, c in sorted(self.pinned.items())},
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


def pinned_dags(conn: sa.Connection, cutoff: datetime) -> dict[str, datetime]:
    """DAGs with a run still unfinished that started before `cutoff`: the cutoff of their own
    pass (one second before that run's start)."""
    rows = conn.execute(
        sa.text(
            "SELECT dag_id, min(start_date) FROM dag_run "
            "WHERE state IN :states AND start_date <= :cutoff GROUP BY dag_id"
        ).bindparams(sa.bindparam("states", expanding=True)),
        {"states": list(UNFINISHED_RUN_STATES), "cutoff": cutoff},
    ).all()
    return {dag_id: start - timedelta(seconds=1) for dag_id, start in rows}


def row_counts(conn: sa.Connection, tables: Sequence[str] = REPORTED_TABLES) -> dict[str, int]:
    present = set(sa.inspect(conn).get_table_names())
    return {
        t: int(conn.execute(sa.text(f'SELECT count(*) FROM "{t}"')).scalar() or 0)
        for t in tables
        if t in present
    }


def clean_command(
    plan: RetentionPlan,
    cutoff: datetime,
    airflow: str = "airflow",
    dag_ids: Sequence[str] = (),
    exclude_dag_ids: Sequence[str] = (),
) -> list[str]:
    argv = [airflow, "db", "clean", "--clean-before-timestamp", cutoff.isoformat(), "--yes"]
    argv.append("--error-on-cleanup-failure")
    if dag_ids:
        argv += ["--dag-ids", ",".join(dag_ids)]
    if exclude_dag_ids:
        argv += ["--exclude-dag-ids", ",".join(exclude_dag_ids)]
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
    pinned = pinned_dags(lock, cutoff)
    report = RetentionReport(cutoff, pinned, plan.dry_run, before=row_counts(lock))
    lock.commit()
    budget = plan.statement_timeout_seconds * 4 + 300
    _airflow(clean_command(plan, cutoff, airflow, exclude_dag_ids=sorted(pinned)), env, budget)
    for dag_id, own_cutoff in sorted(pinned.items()):
        _airflow(clean_command(plan, own_cutoff, airflow, dag_ids=[dag_id]), env, budget)
    if plan.drop_archives and not plan.dry_run:
        tables = ["--tables", ",".join(plan.tables)] if plan.tables else []
        _airflow([airflow, "db", "drop-archived", "--yes", *tables], env, budget)
    report.after = row_counts(lock)
    lock.commit()
    return report
