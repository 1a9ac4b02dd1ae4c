"""Metadata snapshots: an Aurora cluster snapshot through the RDS API (moto server), and a
pg_dump of a real PostgreSQL to S3 (moto server) restored with pg_restore."""

from __future__ import annotations

import uuid

import boto3
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from airflow_platform.cli import build_app
from airflow_platform.ops import snapshots
from airflow_platform.ops.errors import OpsError

pytestmark = pytest.mark.integration
RUNNER = CliRunner()


def ops(*args: str, input: str | None = None):
    return RUNNER.invoke(build_app(["airflow-platform", "ops"]), ["ops", *args], input=input)


@pytest.fixture
def aurora(aws_env: str) -> str:
    name = f"aurora-{uuid.uuid4().hex[:8]}"  # the moto server lives for the session
    boto3.client("rds").create_db_cluster(
        DBClusterIdentifier=name,
        Engine="aurora-postgresql",
        MasterUsername="airflow",
        MasterUserPassword="secret-password",
    )
    return name


def test_an_aurora_snapshot_is_taken_listed_and_restored_into_a_new_cluster(aurora: str) -> None:
    result = ops("snapshot", "create", "--db-cluster", aurora, "--environment", "prod", "--wait")
    assert result.exit_code == 0, result.output
    assert "available" in result.output
    boto3.client("rds").create_db_cluster_snapshot(  # another environment's: not listed
        DBClusterSnapshotIdentifier=f"airflow-platform-staging-{uuid.uuid4().hex[:6]}-000000",
        DBClusterIdentifier=aurora,
    )
    listed = snapshots.rds_list(aurora, "prod")
    assert len(listed) == 1 and listed[0].id.startswith("airflow-platform-prod-")

    result = ops("restore", listed[0].id, "--new-db-cluster", f"{aurora}-restored", input="y\n")
    assert result.exit_code == 0, result.output
    clusters = boto3.client("rds").describe_db_clusters()["DBClusters"]
    assert f"{aurora}-restored" in {c["DBClusterIdentifier"] for c in clusters}


def test_restoring_an_unknown_aurora_snapshot_changes_nothing(aurora: str) -> None:
    def clusters() -> set[str]:
        return {
            c["DBClusterIdentifier"]
            for c in boto3.client("rds").describe_db_clusters()["DBClusters"]
        }

    before = clusters()
    result = ops("restore", "airflow-platform-prod-20200101-000000", "--new-db-cluster", "x",
                 "--yes")  # fmt: skip
    assert result.exit_code == 2
    assert "no DB cluster snapshot" in result.output and "ops snapshots" in result.output
    assert clusters() == before


def test_a_snapshot_without_its_target_names_the_option(aws_env: str) -> None:
    result = ops("snapshot", "create", "--method", "pg_dump", "--s3-uri", "s3://b/p/")
    assert result.exit_code == 2 and "--database-url" in result.output
    result = ops("snapshot", "create", "--method", "tape")
    assert result.exit_code == 2 and "rds (Aurora) or pg_dump" in result.output


def _rows(url: str) -> list[tuple[int, str]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, state FROM task_instance ORDER BY id")).all()
    engine.dispose()
    return [tuple(r) for r in rows]


def test_a_dump_to_s3_restores_the_database_contents(aws_env: str, postgres) -> None:
    url = postgres.create_database("metadata_dump")
    boto3.client("s3").create_bucket(Bucket="backups")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE task_instance (id int primary key, state text)"))
        conn.execute(sa.text("INSERT INTO task_instance VALUES (1, 'success'), (2, 'failed')"))
    taken = snapshots.dump_create(url, "s3://backups/airflow/", "prod")
    assert taken.where == f"s3://backups/airflow/{taken.id}.dump"

    with engine.begin() as conn:  # the upgrade that went wrong
        conn.execute(sa.text("UPDATE task_instance SET state = 'removed'"))
        conn.execute(sa.text("INSERT INTO task_instance VALUES (3, 'queued')"))
    engine.dispose()

    listed = ops("snapshots", "--method", "pg_dump", "--s3-uri", "s3://backups/airflow/",
                 "--environment", "prod", "--json")  # fmt: skip
    assert listed.exit_code == 0, listed.output
    assert taken.id in listed.output

    refused = ops("restore", taken.id, "--method", "pg_dump", "--s3-uri", "s3://backups/airflow/",
                  "--database-url", url, input="n\n")  # fmt: skip
    assert refused.exit_code == 2 and "nothing changed" in refused.output
    assert _rows(url) == [(1, "removed"), (2, "removed"), (3, "queued")]

    done = ops("restore", taken.id, "--method", "pg_dump", "--s3-uri", "s3://backups/airflow/",
               "--database-url", url, "--yes")  # fmt: skip
    assert done.exit_code == 0, done.output
    assert _rows(url) == [(1, "success"), (2, "failed")]


def test_restoring_a_dump_that_does_not_exist_changes_nothing(aws_env: str, postgres) -> None:
    url = postgres.create_database("metadata_missing")
    boto3.client("s3").create_bucket(Bucket="backups2")
    result = ops("restore", "airflow-platform-prod-20200101-000000", "--method", "pg_dump",
                 "--s3-uri", "s3://backups2/", "--database-url", url, "--yes")  # fmt: skip
    assert result.exit_code == 2
    assert "no snapshot" in result.output and "ops snapshots" in result.output


def test_snapshot_ids_name_their_environment() -> None:
    from airflow_platform.ops.cli import _environment_of

    assert _environment_of("airflow-platform-team-a-prod-20260101-120000") == "team-a-prod"
    with pytest.raises(OpsError):
        _environment_of("rds:aurora-prod-2026-01-01")
