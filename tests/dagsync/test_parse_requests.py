"""Parse requests on a real PostgreSQL with Airflow's own table: after each published version
the sidecar names the added, changed and deleted DAG files, in the rows the DAG processor
claims (the same primary key Airflow computes), and keeps what a database failure refused."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from airflow.models.dagbag import DagPriorityParsingRequest
from sqlalchemy.orm import Session

from airflow_platform.dagsync.parse_requests import ParseRequests
from airflow_platform.procs import free_port

from .support import make_sync

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scaling"))
from embedded_pg import EmbeddedPostgres

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    server = EmbeddedPostgres().start()
    try:
        url = server.create_database("airflow")
        engine = sa.create_engine(url)
        # Airflow's own model of the table: the columns and key the DAG processor reads.
        DagPriorityParsingRequest.__table__.create(engine)
        engine.dispose()
        yield url
    finally:
        server.stop()


@pytest.fixture
def rows(database: str) -> Iterator[Any]:
    engine = sa.create_engine(database)

    def read() -> set[tuple[str, str]]:
        with Session(engine) as session:
            return {
                (r.bundle_name, r.relative_fileloc)
                for r in session.scalars(sa.select(DagPriorityParsingRequest))
            }

    yield read
    with engine.begin() as conn:
        conn.execute(sa.delete(DagPriorityParsingRequest.__table__))
    engine.dispose()


def test_each_version_requests_its_changed_dag_files(
    s3c: Any, bucket: str, tmp_path: Path, database: str, rows: Any
) -> None:
    s3c.put_object(Bucket=bucket, Key="dags/a.py", Body=b"a = 1\n")
    s3c.put_object(Bucket=bucket, Key="dags/b.py", Body=b"b = 1\n")
    s3c.put_object(Bucket=bucket, Key="dags/sql/query.sql", Body=b"select 1\n")
    sync = make_sync(tmp_path, bucket, database_url=database)
    try:
        assert sync.run_cycle("reconcile").ok
        # Only what the DAG processor would parse: Python files and zips.
        assert rows() == {("dags-folder", "a.py"), ("dags-folder", "b.py")}

        s3c.put_object(Bucket=bucket, Key="dags/team/new.py", Body=b"n = 1\n")
        s3c.put_object(Bucket=bucket, Key="dags/a.py", Body=b"a = 2\n")
        s3c.delete_object(Bucket=bucket, Key="dags/b.py")
        assert sync.run_cycle("reconcile").ok
        # The rows of the first version are not claimed here: a duplicate is one row.
        assert rows() == {
            ("dags-folder", "a.py"),
            ("dags-folder", "b.py"),
            ("dags-folder", "team/new.py"),
        }

        # Nothing changed, nothing published: nothing requested.
        before = rows()
        assert sync.run_cycle("reconcile").ok
        assert rows() == before
    finally:
        sync.close()


def test_the_rows_carry_airflows_own_key(database: str, rows: Any) -> None:
    ParseRequests(database, "dags-folder").request(["team/x.py"])
    engine = sa.create_engine(database)
    try:
        with Session(engine) as session, pytest.raises(sa.exc.IntegrityError):
            # Airflow's ORM computes the same primary key: the same request is a duplicate.
            session.add(DagPriorityParsingRequest("dags-folder", "team/x.py"))
            session.flush()
    finally:
        engine.dispose()
    assert rows() == {("dags-folder", "team/x.py")}


def test_without_a_database_the_sidecar_requests_nothing(
    s3c: Any, bucket: str, tmp_path: Path, rows: Any
) -> None:
    s3c.put_object(Bucket=bucket, Key="dags/a.py", Body=b"a = 1\n")
    sync = make_sync(tmp_path, bucket)
    try:
        assert sync.parse_requests is None
        assert sync.run_cycle("reconcile").ok
    finally:
        sync.close()
    assert rows() == set()


def test_once_never_writes_requests(s3c: Any, bucket: str, tmp_path: Path, database: str) -> None:
    sync = make_sync(tmp_path, bucket, database_url=database, once=True)
    try:
        assert sync.parse_requests is None
    finally:
        sync.close()


def test_a_database_failure_keeps_the_sync_and_retries_the_requests(
    s3c: Any, bucket: str, tmp_path: Path, database: str, rows: Any
) -> None:
    s3c.put_object(Bucket=bucket, Key="dags/a.py", Body=b"a = 1\n")
    down = f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/airflow?connect_timeout=2"
    sync = make_sync(tmp_path, bucket, database_url=down)
    try:
        result = sync.run_cycle("reconcile")
        # The DAGs are published all the same; the request waits for the next sync.
        assert result.ok and result.dags is not None and result.dags.version
        assert sync.metrics.errors.labels("parse_request")._value.get() == 1
        assert sync.parse_requests is not None and sync.parse_requests.pending == {"a.py"}

        sync.parse_requests.close()
        sync.parse_requests = ParseRequests(database, "dags-folder")
        sync.parse_requests.pending = {"a.py"}
        s3c.put_object(Bucket=bucket, Key="dags/c.py", Body=b"c = 1\n")
        assert sync.run_cycle("reconcile").ok
        assert rows() == {("dags-folder", "a.py"), ("dags-folder", "c.py")}
        assert sync.parse_requests.pending == set()
    finally:
        sync.close()


def test_bad_database_url_names_the_variable() -> None:
    from airflow_platform.dagsync.settings import SettingsError, build_settings

    with pytest.raises(SettingsError, match="DAGSYNC_DATABASE_URL"):
        build_settings(bucket="my-bucket", database_url="redis://localhost/0")
    with pytest.raises(SettingsError, match="DAGSYNC_DAG_BUNDLE"):
        build_settings(bucket="my-bucket", dag_bundle=" ")
    settings = build_settings(bucket="my-bucket", database_url="postgresql://u:secret@db/airflow")
    assert "secret" not in repr(settings)
