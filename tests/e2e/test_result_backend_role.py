"""The chart README's recipe for `database.resultBackendSecret`, run as written on a real
PostgreSQL: Celery's result backend works with the role, and the role reads no Airflow table."""

from __future__ import annotations

import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from celery import Celery

from airflow_platform.local.services import start_postgres
from airflow_platform.local.state import StateDir
from airflow_platform.local.supervisor import Supervisor
from airflow_platform.procs import free_port

pytestmark = [pytest.mark.e2e]

README = Path(__file__).resolve().parents[2] / "charts" / "airflow-platform" / "README.md"


def readme_recipe(password: str) -> list[str]:
    anchor = "The result backend: through `database.resultBackendSecret`"
    section = README.read_text().split(anchor)[1]
    sql = re.search(r"```sql\n(.*?)```", section, re.DOTALL)
    assert sql, "the README's recipe has no SQL block"
    return [
        s.strip() for s in sql.group(1).replace("'...'", f"'{password}'").split(";") if s.strip()
    ]


@pytest.fixture
def postgres() -> Iterator[tuple[int, str]]:
    # Not under pytest's 0700 tmp dirs: PostgreSQL runs as `nobody` when we are root.
    root = Path(tempfile.mkdtemp(prefix="airflow-platform-results-"))
    root.chmod(0o755)
    sup = Supervisor(StateDir.at(root / "state"))
    port, password = free_port(), secrets.token_urlsafe(12)
    try:
        start_postgres(sup, port, password)
        yield port, password
    finally:
        sup.stop("postgres")
        shutil.rmtree(root, ignore_errors=True)


def connect(port: int, user: str, password: str):
    conn = psycopg2.connect(
        host="127.0.0.1", port=port, user=user, password=password, dbname="airflow"
    )
    conn.autocommit = True
    return conn


def test_result_backend_role_uses_its_own_schema_only(postgres) -> None:
    port, owner_password = postgres
    with connect(port, "airflow", owner_password) as owner, owner.cursor() as cur:
        # Stands for Airflow's tables, created by the owner role `airflow db migrate` uses.
        cur.execute("CREATE TABLE connection (conn_id text, password text)")
        cur.execute("INSERT INTO connection VALUES ('aws_default', 'hunter2')")
        role_password = secrets.token_urlsafe(12)
        for statement in readme_recipe(role_password):
            cur.execute(statement)

    url = f"db+postgresql://airflow_results:{role_password}@127.0.0.1:{port}/airflow"
    app = Celery(backend=url)
    app.backend.store_result("a-task-id", {"state": "done"}, "SUCCESS")
    assert app.backend.get_task_meta("a-task-id")["status"] == "SUCCESS"

    with connect(port, "airflow_results", role_password) as role, role.cursor() as cur:
        cur.execute(
            "SELECT table_schema FROM information_schema.tables "
            "WHERE table_name IN ('celery_taskmeta', 'celery_tasksetmeta')"
        )
        assert {row[0] for row in cur.fetchall()} == {"celery_results"}
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            cur.execute("SELECT password FROM public.connection")
