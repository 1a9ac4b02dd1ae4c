"""Tell the DAG processor what a sync changed, so it parses those files at once.

The DAG processor lists its bundle every `dag_processor.refresh_interval` (MWAA: 300 s), so
a new file would wait up to five minutes. But on every loop (about once a second) it reads
Airflow's `dag_priority_parsing_request` table, parses the files named there first and
re-lists the bundle they belong to. After each published version the sidecar of the
dag-processor pod writes one row per added, changed or deleted DAG file: new and changed
files are parsed at once; a deleted one makes the re-listing deactivate its DAGs.

Only the dag-processor pod's sidecar gets the database URL (the chart's choice); everywhere
else this is off. A failed write is kept and retried with the next sync: the periodic
listing is the fallback, never a lost change.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from typing import Any

LOG = logging.getLogger("airflow_platform.dagsync")
TABLE = "dag_priority_parsing_request"
# What the DAG processor's listing considers (airflow.utils.file.list_py_file_paths): Python
# files and zip archives. Anything else is never parsed, so it needs no request.
PARSED_SUFFIXES = (".py", ".zip")


def request_id(bundle: str, rel_path: str) -> str:
    """The row's primary key as Airflow computes it (models.dagbag.generate_md5_hash): the
    same file requested twice, by two sidecars or two syncs, is one row."""
    return hashlib.md5(f"{bundle}:{rel_path}".encode()).hexdigest()


def parsed_paths(paths: Iterable[str]) -> list[str]:
    return sorted({p for p in paths if p.lower().endswith(PARSED_SUFFIXES)})


class ParseRequests:
    """Writes parse requests for one DAG bundle into Airflow's metadata database."""

    def __init__(self, url: str, bundle: str) -> None:
        import sqlalchemy as sa  # the image's (Airflow's) SQLAlchemy; imported only when on

        self.bundle = bundle
        # One idle connection at most; checked before use after a database failover.
        self.engine = sa.create_engine(url, pool_size=1, max_overflow=0, pool_pre_ping=True)
        self.table = sa.table(
            TABLE, sa.column("id"), sa.column("bundle_name"), sa.column("relative_fileloc")
        )
        self.pending: set[str] = set()

    def request(self, paths: Iterable[str]) -> int:
        """Request parsing of `paths` (relative to the bundle) plus any earlier failed ones;
        returns how many rows were sent. Raises on a database error (kept for the retry)."""
        self.pending.update(parsed_paths(paths))
        if not self.pending:
            return 0
        rows = [
            {"id": request_id(self.bundle, p), "bundle_name": self.bundle, "relative_fileloc": p}
            for p in sorted(self.pending)
        ]
        with self.engine.begin() as conn:
            conn.execute(self._insert_ignoring_duplicates(), rows)
        self.pending.clear()
        return len(rows)

    def _insert_ignoring_duplicates(self) -> Any:
        # A row already there (not yet claimed) asks for the same parse: keep it.
        name = self.engine.dialect.name
        if name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(self.table).on_conflict_do_nothing()
        if name == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            return sqlite_insert(self.table).on_conflict_do_nothing()
        if name == "mysql":
            return self.table.insert().prefix_with("IGNORE")
        raise ValueError(f"parse requests support PostgreSQL, MySQL and SQLite, not {name}")

    def close(self) -> None:
        self.engine.dispose()
