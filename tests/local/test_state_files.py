"""The local platform's state folder holds keys, passwords and the database: owner-only
(0700) from creation, and every secret file is created 0600, never readable by others
for an instant, whatever the umask."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_platform.local.state import StateDir, write_private


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The most permissive umask: modes must come from the code, not the environment."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_state_folder_is_created_owner_only(tmp_path: Path, loose_umask: None) -> None:
    state = StateDir.at(tmp_path / "nested" / ".local-state")
    generated = state.secrets()
    assert mode(state.root) == 0o700
    assert mode(state.root / "secrets.json") == 0o600
    assert json.loads((state.root / "secrets.json").read_text()) == generated
    state.update(ports={"api": 8080})
    assert mode(state.root / "state.json") == 0o600
    assert state.load()["ports"] == {"api": 8080}
    assert sorted(p.name for p in state.root.iterdir()) == [".lock", "secrets.json", "state.json"]


def test_a_folder_left_open_is_closed(tmp_path: Path) -> None:
    root = tmp_path / ".local-state"
    root.mkdir()
    root.chmod(0o755)  # as earlier versions created it
    StateDir.at(root).secrets()
    assert mode(root) == 0o700


def test_postgres_group_may_only_traverse(tmp_path: Path) -> None:
    state = StateDir.at(tmp_path / ".local-state")
    gid = os.getgid()
    state.let_group_traverse(gid)
    assert mode(state.root) == 0o710 and state.root.stat().st_gid == gid
    state.secrets()  # later writes keep the traverse-only grant
    assert mode(state.root) == 0o710


def test_private_files_are_never_wider(tmp_path: Path, loose_umask: None) -> None:
    target = tmp_path / "secret.txt"
    target.write_text("old")
    target.chmod(0o644)
    # A leftover temporary file from a crash, world-readable: reused at 0600.
    leftover = tmp_path / f".secret.txt.tmp{os.getpid()}"
    leftover.write_text("stale")
    leftover.chmod(0o666)
    write_private(target, "new")
    assert target.read_text() == "new" and mode(target) == 0o600
    assert not leftover.exists()
    # A symlink planted where the temporary file goes is refused, not followed.
    victim = tmp_path / "victim"
    victim.write_text("keep")
    leftover.symlink_to(victim)
    with pytest.raises(OSError):
        write_private(target, "other")
    assert victim.read_text() == "keep" and target.read_text() == "new"
