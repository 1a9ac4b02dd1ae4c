"""plugins.zip, requirements.txt and startup.sh by S3 object version, and hostile zips."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path
from typing import Any

import pytest

from airflow_platform.paths import SyncLayout

from .support import make_sync

pytestmark = pytest.mark.integration


def zip_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def put(s3c: Any, bucket: str, key: str, body: bytes) -> str:
    return s3c.put_object(Bucket=bucket, Key=key, Body=body)["VersionId"]


def test_pinned_versions_are_fetched(s3c: Any, bucket: str, tmp_path: Path) -> None:
    v1 = put(s3c, bucket, "plugins.zip", zip_of({"my_plugin/__init__.py": b"V = 1\n"}))
    put(s3c, bucket, "plugins.zip", zip_of({"my_plugin/__init__.py": b"V = 2\n", "x.py": b""}))
    r1 = put(s3c, bucket, "requirements.txt", b"requests==2.31.0\n")
    put(s3c, bucket, "requirements.txt", b"requests==2.32.0\n")
    s1 = put(s3c, bucket, "startup.sh", b"export A=1\n")
    put(s3c, bucket, "dags/a.py", b"a\n")
    layout = SyncLayout(tmp_path)

    pinned = make_sync(
        tmp_path / "pinned",
        bucket,
        plugins_key="plugins.zip",
        plugins_version=v1,
        requirements_key="requirements.txt",
        requirements_version=r1,
        startup_key="startup.sh",
        startup_version=s1,
    )
    result = pinned.run_cycle("test")
    assert result.ok, result.summary()
    layout = SyncLayout(tmp_path / "pinned")
    assert (layout.plugins / "my_plugin/__init__.py").read_bytes() == b"V = 1\n"
    assert not (layout.plugins / "x.py").exists()
    assert layout.requirements.read_bytes() == b"requests==2.31.0\n"
    assert layout.startup_script.read_bytes() == b"export A=1\n"
    # A pinned version is not fetched again.
    again = pinned.run_cycle("test")
    assert again.ok and not any(a.changed for a in again.artifacts)

    latest = make_sync(
        tmp_path / "latest",
        bucket,
        plugins_key="plugins.zip",
        requirements_key="requirements.txt",
    )
    assert latest.run_cycle("test").ok
    layout = SyncLayout(tmp_path / "latest")
    assert (layout.plugins / "my_plugin/__init__.py").read_bytes() == b"V = 2\n"
    assert layout.requirements.read_bytes() == b"requests==2.32.0\n"
    assert not layout.startup_script.exists()
    unchanged = latest.run_cycle("test")
    assert not any(a.changed for a in unchanged.artifacts)
    # A new latest object is picked up and swapped in.
    put(s3c, bucket, "plugins.zip", zip_of({"my_plugin/__init__.py": b"V = 3\n"}))
    changed = latest.run_cycle("test")
    assert [a.name for a in changed.artifacts if a.changed] == ["plugins"]
    assert (layout.plugins / "my_plugin/__init__.py").read_bytes() == b"V = 3\n"


def test_missing_pinned_version_fails_with_the_flag_named(
    s3c: Any, bucket: str, tmp_path: Path
) -> None:
    put(s3c, bucket, "requirements.txt", b"x\n")
    sync = make_sync(
        tmp_path, bucket, requirements_key="requirements.txt", requirements_version="nope123"
    )
    result = sync.run_cycle("test")
    assert not result.ok
    assert "DAGSYNC_REQUIREMENTS_KEY" in result.summary()


def _entry(name: str, mode: int, data: bytes = b"x") -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = mode << 16
    return info, data


def hostile(case: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ok.py", b"fine\n")
        if case == "absolute":
            zf.writestr("/etc/cron.d/evil", b"x")
        elif case == "traversal":
            zf.writestr("pkg/../../evil.py", b"x")
        elif case == "symlink":
            zf.writestr(*_entry("link", stat.S_IFLNK | 0o777, b"/etc/passwd"))
        elif case == "device":
            zf.writestr(*_entry("dev", stat.S_IFCHR | 0o666, b""))
        elif case == "fifo":
            zf.writestr(*_entry("pipe", stat.S_IFIFO | 0o644, b""))
        elif case == "too_many_entries":
            for i in range(60):
                zf.writestr(f"many/{i}.py", b"")
        elif case == "too_many_bytes":
            zf.writestr("big.bin", b"\0" * (40 * 1024 * 1024))
        elif case == "entry_ratio_bomb":
            zf.writestr("bomb.bin", b"\0" * (4 * 1024 * 1024))
        elif case == "total_ratio_bomb":
            # Each entry stays under the per-entry floor; together they are a bomb.
            for i in range(20):
                zf.writestr(f"part{i}.bin", b"\0" * (1024 * 1024))
        elif case == "duplicate":
            zf.writestr("ok.py", b"shadow\n")
    data = buffer.getvalue()
    if case == "lying_header":
        # Declare 10 bytes for an entry that inflates to 2 MiB: the limit must hold on the
        # bytes actually inflated.
        data = _lie_about_size(zip_of({"liar.bin": b"A" * (2 * 1024 * 1024)}), 10)
    if case == "not_a_zip":
        data = b"this is not a zip archive"
    return data


def _lie_about_size(data: bytes, size: int) -> bytes:
    raw = bytearray(data)
    local = raw.find(b"PK\x03\x04")
    raw[local + 22 : local + 26] = size.to_bytes(4, "little")
    central = raw.find(b"PK\x01\x02")
    raw[central + 24 : central + 28] = size.to_bytes(4, "little")
    return bytes(raw)


CASES = [
    ("absolute", "absolute path"),
    ("traversal", "'..'"),
    ("symlink", "symbolic link"),
    ("device", "device or special"),
    ("fifo", "device or special"),
    ("too_many_entries", "exceed the limit of 50"),
    ("too_many_bytes", "exceeds the limit"),
    ("entry_ratio_bomb", "compression bomb"),
    ("total_ratio_bomb", "compression bomb"),
    ("duplicate", "appears twice"),
    ("lying_header", "corrupt"),
    ("not_a_zip", "not a readable zip"),
]


@pytest.fixture(scope="module")
def plugins_env(s3c: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Any, Path]:
    from .support import new_bucket

    bucket = new_bucket(s3c)
    put(s3c, bucket, "plugins.zip", zip_of({"good/__init__.py": b"GOOD = True\n"}))
    root = tmp_path_factory.mktemp("plugins-root")
    sync = make_sync(
        root,
        bucket,
        plugins_key="plugins.zip",
        plugins_max_entries=50,
        plugins_max_bytes=32 * 1024 * 1024,
    )
    assert sync.run_cycle("test").ok
    return bucket, sync, root


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize(("case", "reason"), CASES, ids=[c for c, _ in CASES])
def test_hostile_zip_is_refused_and_previous_plugins_stay(
    s3c: Any, plugins_env: tuple[str, Any, Path], case: str, reason: str
) -> None:
    bucket, sync, root = plugins_env
    layout = SyncLayout(root)
    before = sync.artifacts.plugins.current_name()
    put(s3c, bucket, "plugins.zip", hostile(case))
    result = sync.run_cycle("test")
    assert not result.ok
    [(part, kind, message)] = result.errors
    assert (part, kind) == ("plugins", "plugins_rejected")
    assert reason in message and "previous plugins stay" in message
    assert sync.artifacts.plugins.current_name() == before
    files = sorted(str(p.relative_to(layout.plugins)) for p in layout.plugins.rglob("*"))
    assert files == ["good", "good/__init__.py"]
    assert (layout.plugins / "good/__init__.py").read_bytes() == b"GOOD = True\n"
    leftovers = [
        p.name for p in (root / "plugins" / ".versions").iterdir() if p.name.startswith(".")
    ]
    assert leftovers == []
    assert not Path("/etc/cron.d/evil").exists()
