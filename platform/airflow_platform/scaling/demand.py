"""Worker demand as Airflow's metadata database sees it.

Running and queued task instances give MWAA's formula its input; running task instances
grouped by `hostname` (which Airflow sets when a worker starts the task) tell which
workers are busy. Only two indexed-state filters and a GROUP BY: cheap enough to poll
every few seconds, the same query shape the chart's KEDA trigger uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine

DATABASE_URL_ENV = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"


@dataclass(frozen=True)
class Demand:
    running: int
    queued: int
    running_by_host: dict[str, int] = field(default_factory=dict)

    @property
    def busy_workers(self) -> int:
        return sum(1 for count in self.running_by_host.values() if count > 0)


def _queue_filter(
    queues: Sequence[str], exclude: Sequence[str]
) -> tuple[str, dict[str, object], list[str]]:
    where, params, expanding = "", {}, []
    if queues:
        where += " AND queue IN :queues"
        params["queues"] = tuple(queues)
        expanding.append("queues")
    if exclude:
        where += " AND queue NOT IN :exclude"
        params["exclude"] = tuple(exclude)
        expanding.append("exclude")
    return where, params, expanding


def read_demand(engine: Engine, queues: Sequence[str] = (), exclude: Sequence[str] = ()) -> Demand:
    """Running/queued task instances (optionally only on `queues`, or on every queue but
    `exclude`: the default queue's workers serve all but the extra queues) and running ones
    per host."""
    where, params, expanding = _queue_filter(queues, exclude)
    statement = sa.text(
        "SELECT state, coalesce(hostname, '') AS host, count(*) AS n FROM task_instance"
        f" WHERE state IN ('running', 'queued'){where} GROUP BY state, host"
    )
    for name in expanding:
        statement = statement.bindparams(sa.bindparam(name, expanding=True))
    running = queued = 0
    by_host: dict[str, int] = {}
    with engine.connect() as conn:
        for state, host, count in conn.execute(statement, params):
            if state == "queued":
                queued += count
                continue
            running += count
            # A running task without a host has not reported in yet; it is counted above.
            if host:
                by_host[host] = by_host.get(host, 0) + count
    return Demand(running=running, queued=queued, running_by_host=by_host)


def running_on_host(engine: Engine, hostname: str) -> int:
    """Task instances that run on the worker whose Airflow hostname is `hostname`."""
    statement = sa.text(
        "SELECT count(*) FROM task_instance WHERE state = 'running' AND hostname = :host"
    )
    with engine.connect() as conn:
        return int(conn.execute(statement, {"host": hostname}).scalar_one())


def make_engine(database_url: str) -> Engine:
    """A small engine for polling; a clear error for a URL SQLAlchemy cannot use."""
    if not database_url:
        raise ValueError(
            f"database URL is empty: pass --database-url or set {DATABASE_URL_ENV} "
            "(postgresql+psycopg2://user:password@host:5432/airflow)"
        )
    try:
        return sa.create_engine(database_url, pool_size=1, max_overflow=0, pool_pre_ping=True)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
        raise ValueError(
            f"database URL is not usable by SQLAlchemy ({exc}); expected e.g. "
            "postgresql+psycopg2://user:password@host:5432/airflow"
        ) from exc
