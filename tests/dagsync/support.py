"""Helpers shared by the dagsync tests."""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from airflow_platform.dagsync.service import DagSync
from airflow_platform.dagsync.settings import build_settings

_counter = itertools.count()

AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


def new_bucket(s3c: Any, compliant: bool = True) -> str:
    name = f"dagsync-{next(_counter)}-{uuid.uuid4().hex[:8]}"
    s3c.create_bucket(Bucket=name)
    if compliant:
        s3c.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        s3c.put_public_access_block(
            Bucket=name,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
    return name


def make_sync(
    root: Path, bucket: str, on_progress: Callable[[str], None] | None = None, **overrides: Any
) -> DagSync:
    values: dict[str, Any] = {"bucket": bucket, "root": root, "health_port": 0}
    values.update(overrides)
    sync = DagSync(build_settings(**values), on_progress=on_progress)
    sync.prepare()
    return sync


def tree(path: Path) -> dict[str, bytes]:
    """Every file under `path` (following the `current` symlink) by relative path."""
    base = Path(os.path.realpath(path))
    return {
        str(p.relative_to(base)): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()
    }
