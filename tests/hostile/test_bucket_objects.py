"""Bucket objects dagsync refuses. Whoever can write to the environment's bucket must not
be able to fill a node's disk, write outside the sync root or replace what Airflow runs
with something half-checked: each object below is refused with a message naming the
object and the limit or rule, and the last good DAGs, plugins, requirements.txt and
startup.sh stay published, byte for byte."""

from __future__ import annotations

import io
import os
import stat
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_platform.dagsync.service import DagSync
from airflow_platform.dagsync.settings import build_settings
from airflow_platform.paths import SyncLayout

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
SETTINGS = {
    "max_object_bytes": 1000,
    "max_total_bytes": 2000,
    "max_files": 4,
    "max_script_bytes": 256,
    "plugins_max_entries": 50,
    "plugins_max_bytes": 8 * MiB,
    "plugins_key": "plugins.zip",
    "requirements_key": "requirements.txt",
    "startup_key": "startup.sh",
}
GOOD = {
    "dags/a.py": b"# good dag a\n",
    "dags/lib/helpers.py": b"# good helper\n",
    "requirements.txt": b"requests==2.32.0\n",
    "startup.sh": b"export GOOD=1\n",
}


def zip_bytes(*entries: tuple[zipfile.ZipInfo | str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buffer.getvalue()


def symlink_entry(name: str, target: bytes) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix: the mode in the external attributes counts
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target


GOOD_PLUGINS = zip_bytes(("good/__init__.py", b"GOOD = True\n"))


@dataclass(frozen=True)
class Case:
    """Objects put into a bucket that already synced GOOD, and what the refusal says."""

    objects: dict[str, bytes]
    part: str  # dags | plugins | requirements | startup
    words: tuple[str, ...]


CASES: dict[str, Case] = {
    "object_too_large": Case(
        {"dags/model.bin": b"\0" * 1001},
        "dags",
        ("dags/model.bin", "per object", "dags.sync.maxObjectBytes"),
    ),
    "too_many_files": Case(
        {f"dags/gen/{i}.py": b"#\n" for i in range(3)},
        "dags",
        ("holds 5 files", "limit of 4", "dags.sync.maxFiles"),
    ),
    "total_too_large": Case(
        {"dags/q1.sql": b"-" * 999, "dags/q2.sql": b"-" * 999},
        "dags",
        ("over the limit of 2.0 KiB", "dags.sync.maxTotalBytes"),
    ),
    "zip_absolute_path": Case(
        {"plugins.zip": zip_bytes(("/etc/cron.d/evil", b"* * * * * root sh\n"))},
        "plugins",
        ("'/etc/cron.d/evil'", "absolute path"),
    ),
    "zip_dot_dot": Case(
        {"plugins.zip": zip_bytes(("pkg/../../../evil.py", b"x"))},
        "plugins",
        ("'pkg/../../../evil.py'", "climbs out of the plugins folder"),
    ),
    "zip_symlink": Case(
        {"plugins.zip": zip_bytes(symlink_entry("passwd", b"/etc/passwd"))},
        "plugins",
        ("'passwd'", "symbolic link"),
    ),
    "zip_bomb": Case(
        {"plugins.zip": zip_bytes(("bomb.bin", b"\0" * (4 * MiB)))},
        "plugins",
        ("'bomb.bin'", "compression bomb"),
    ),
    "zip_too_many_entries": Case(
        {"plugins.zip": zip_bytes(*((f"many/{i}.py", b"") for i in range(51)))},
        "plugins",
        ("51 entries exceed the limit of 50", "--plugins-max-entries"),
    ),
    "zip_object_too_large": Case(
        {"plugins.zip": os.urandom(8 * MiB + 1)},
        "plugins",
        ("plugins.zip is 8.0 MiB", "--plugins-max-bytes", "nothing was downloaded"),
    ),
    "requirements_too_large": Case(
        {"requirements.txt": b"# pad\n" * 50},
        "requirements",
        ("requirements.txt is 300 bytes", "dags.sync.maxScriptBytes"),
    ),
    "startup_too_large": Case(
        {"startup.sh": b"#" * 257},
        "startup",
        ("startup.sh is 257 bytes", "dags.sync.maxScriptBytes"),
    ),
}


@pytest.fixture
def env(s3: Any, tmp_path: Path) -> Callable[[], tuple[str, DagSync, dict[str, bytes]]]:
    """A bucket holding GOOD, synced once; returns (bucket, sync, what was published)."""

    def make() -> tuple[str, DagSync, dict[str, bytes]]:
        bucket = f"hostile-{uuid.uuid4().hex[:12]}"
        s3.create_bucket(Bucket=bucket)
        for key, body in {**GOOD, "plugins.zip": GOOD_PLUGINS}.items():
            s3.put_object(Bucket=bucket, Key=key, Body=body)
        settings = build_settings(bucket=bucket, root=tmp_path / "root", health_port=0, **SETTINGS)
        sync = DagSync(settings)
        sync.prepare()
        assert sync.run_cycle("test").ok
        return bucket, sync, published(sync.layout)

    return make


def published(layout: SyncLayout) -> dict[str, bytes]:
    """Everything Airflow and the entrypoint read, by path under the sync root."""
    found: dict[str, bytes] = {}
    for name, base in (("dags", layout.dags), ("plugins", layout.plugins)):
        real = Path(os.path.realpath(base))
        for path in sorted(real.rglob("*")):
            if path.is_file() or path.is_symlink():
                found[f"{name}/{path.relative_to(real)}"] = path.read_bytes()
    for path in (layout.requirements, layout.startup_script):
        found[path.name] = path.read_bytes()
    return found


def leftovers(root: Path) -> list[str]:
    """Half-built versions and staging files a refusal must not leave behind."""
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob(".*")
        if p.name.startswith((".building-", ".tmp-"))
    )


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize("name", list(CASES))
def test_object_is_refused_and_the_last_good_version_stays(
    s3: Any, env: Callable[[], tuple[str, DagSync, dict[str, bytes]]], name: str
) -> None:
    case = CASES[name]
    bucket, sync, before = env()
    versions = (sync.dags.current_name(), sync.artifacts.plugins.current_name())
    for key, body in case.objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    result = sync.run_cycle("reconcile")
    assert not result.ok
    [(part, _kind, message)] = result.errors
    assert part == case.part
    for words in case.words:
        assert words in message, message
    assert [r["part"] for r in sync.status()["refused"]] == [case.part]
    assert published(sync.layout) == before
    assert (sync.dags.current_name(), sync.artifacts.plugins.current_name()) == versions
    assert leftovers(sync.layout.root) == []
    assert not Path("/etc/cron.d/evil").exists()
    # Undo the change: the next cycle accepts the bucket again.
    for key in case.objects:
        if key in GOOD or key == "plugins.zip":
            s3.put_object(Bucket=bucket, Key=key, Body={**GOOD, "plugins.zip": GOOD_PLUGINS}[key])
        else:
            s3.delete_object(Bucket=bucket, Key=key)
    assert sync.run_cycle("reconcile").ok
    assert sync.status()["refused"] == []
    assert published(sync.layout) == before


@pytest.mark.parametrize(
    "key", ["dags/../escaped.py", "dags/./dot.py", "dags//empty.py", "dags/" + "n" * 256 + ".py"]
)
def test_key_that_cannot_be_a_safe_path_is_skipped(
    s3: Any, env: Callable[[], tuple[str, DagSync, dict[str, bytes]]], key: str
) -> None:
    """S3 accepts these names; as paths they would climb out of the DAGs folder or break
    the filesystem. They are skipped and reported by key; the rest of the folder syncs."""
    bucket, sync, before = env()
    s3.put_object(Bucket=bucket, Key=key, Body=b"evil\n")
    s3.put_object(Bucket=bucket, Key="dags/b.py", Body=b"# good b\n")
    result = sync.run_cycle("reconcile")
    assert result.ok, result.summary()
    assert result.dags is not None and result.dags.skipped_keys == [key]
    after = published(sync.layout)
    assert after == {**before, "dags/b.py": b"# good b\n"}
    root = sync.layout.root
    assert not any(p.name in ("escaped.py", "dot.py", "empty.py") for p in root.rglob("*"))
