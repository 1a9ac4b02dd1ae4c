"""Snapshot and restore benchmark: `ops snapshot create --method pg_dump` and `ops restore`
on a real PostgreSQL holding Airflow's schema (`airflow db migrate`) with N task instances,
dumps stored in S3 (a moto server). Each round takes a snapshot, empties the table and
restores it (the two alternate); prints medians and spread (min-max); asserts only that the
restore brought the rows back. Writes bench/results/ops.txt.

Usage: .venv/bin/python bench/ops/run.py [--task-instances 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import boto3
import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "tests" / "scaling"), str(REPO / "bench")]

from _runner import Report, interleave  # noqa: E402
from embedded_pg import EmbeddedPostgres, migrate_airflow_db  # noqa: E402

from airflow_platform.ops import snapshots  # noqa: E402
from airflow_platform.procs import ManagedProcess, free_port, port_open, wait_until  # noqa: E402


def count(url: str) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        n = conn.execute(sa.text("SELECT count(*) FROM task_instance")).scalar_one()
    engine.dispose()
    return int(n)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--task-instances", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    report = Report("ops")
    say = report.say
    work = Path(tempfile.mkdtemp(prefix="bench-ops-"))
    port = free_port()
    moto = ManagedProcess(
        "moto",
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        work / "moto.log",
    ).start()
    server = EmbeddedPostgres().start()
    try:
        wait_until(lambda: port_open(port), 30, "moto server")
        os.environ.update(
            AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION="us-east-1",
        )
        boto3.client("s3").create_bucket(Bucket="bench-snapshots")
        url = server.create_database("airflow")
        say("airflow db migrate ...")
        migrate_airflow_db(url, work / "airflow-home")
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO dag_run (dag_id, run_id, run_type, run_after)"
                    " VALUES ('bench', 'r', 'manual', now())"
                )
            )
            conn.execute(
                sa.text(
                    "INSERT INTO task_instance (id, task_id, dag_id, run_id, try_number, pool,"
                    " pool_slots, state, hostname, queue)"
                    " SELECT gen_random_uuid(), 't' || g, 'bench', 'r', 1, 'default_pool', 1,"
                    " 'success', 'w' || (g % 10), 'default' FROM generate_series(1, :n) g"
                ),
                {"n": args.task_instances},
            )
        engine.dispose()
        say(f"{count(url)} task instances; {max(3, args.rounds)} rounds")
        sizes = []

        def snapshot() -> dict[str, float]:
            """Take a snapshot, empty the table, restore it: one round."""
            t0 = time.perf_counter()
            taken = snapshots.dump_create(url, "s3://bench-snapshots/airflow/", "bench")
            take = time.perf_counter() - t0
            sizes.append(int(taken.size.split()[0]))
            engine = sa.create_engine(url)
            with engine.begin() as conn:
                conn.execute(sa.text("DELETE FROM task_instance"))
            engine.dispose()
            t0 = time.perf_counter()
            snapshots.dump_restore(taken.id, "s3://bench-snapshots/airflow/", url)
            restore = time.perf_counter() - t0
            assert count(url) == args.task_instances, "the restore lost rows"
            time.sleep(1)  # snapshot ids have one-second resolution
            return {"snapshot": take, "restore": restore}

        runs = interleave({"snapshot and restore": snapshot}, args.rounds, say)[
            "snapshot and restore"
        ]
        report.figure(
            "ops.snapshot", "ops snapshot create --method pg_dump (-> S3)", runs["snapshot"]
        )
        report.figure("ops.restore", "ops restore (S3 -> pg_restore --clean)", runs["restore"])
        report.value("ops.dump_mb", "dump size", max(sizes) / 1e6, "MB", 1)
        report.write()
    finally:
        server.stop()
        moto.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
