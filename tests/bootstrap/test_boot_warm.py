"""Warm starts: the same inputs reuse the earlier start's outcome without loading the
installer, the checks or typer; any changed input is checked and installed again."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from boot_helpers import PodDirs

from airflow_platform.bootstrap.entrypoint import BootstrapError, prepare
from airflow_platform.bootstrap.result import InstallResult
from airflow_platform.bootstrap.tree_cache import MARKER, STALE_STAGING_SECONDS, TreeCache
from airflow_platform.cli import bootstrap_request

CLI = str(Path(sys.executable).parent / "airflow-platform")
# What a warm start must not load: the CLI framework and everything behind a full install.
HEAVY = (
    "typer",
    "click",
    "pydantic",
    "packaging",
    "importlib.metadata",
    "airflow_platform.bootstrap.install",
    "airflow_platform.bootstrap.check",
    "airflow_platform.bootstrap.constraints",
    "airflow_platform.bootstrap.requirements_file",
)
REPORT = "import cowsay; print(cowsay.__file__); print(cowsay.__cached__)"

pytestmark = pytest.mark.integration


def _imported(stderr: str) -> set[str]:
    """Module names from `python -X importtime` output."""
    return {
        line.rsplit("|", 1)[1].strip()
        for line in stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def _heavy(modules: set[str]) -> set[str]:
    return {m for m in modules if any(m == h or m.startswith(f"{h}.") for h in HEAVY)}


def _boot(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The console script as a container runs it, reporting its imports."""
    return subprocess.run(
        [sys.executable, "-X", "importtime", CLI, *args],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_warm_starts_load_no_installer_and_carry_bytecode(tmp_path: Path) -> None:
    pod = PodDirs(tmp_path)
    pod.write_requirements("cowsay==6.1\n")
    # Nothing may compile at run time: bytecode must come from the install.
    env = pod.env(PYTHONDONTWRITEBYTECODE="1")
    argv = ("bootstrap", "--component", "worker", "--", sys.executable, "-c", REPORT)

    cold = _boot(env, *argv)
    assert cold.returncode == 0, cold.stderr
    assert "requirements: installed" in cold.stderr
    # The import report does see the installer when it runs.
    assert "airflow_platform.bootstrap.install" in _imported(cold.stderr)

    shutil.rmtree(pod.packages)  # a new pod: empty packages dir, the cache holds the tree
    warm = _boot(env, *argv)
    assert warm.returncode == 0, warm.stderr
    assert "requirements: tree-cache" in warm.stderr and "checks reused" in warm.stderr
    assert _heavy(_imported(warm.stderr)) == set()
    module, cached = warm.stdout.split()
    assert module.startswith(str(pod.packages))
    # The exec'd command found the bytecode the install compiled, hard-linked from the cache.
    assert Path(cached).is_file()
    trees = [p for p in (pod.cache / "trees").iterdir() if not p.name.startswith(".")]
    tree_copy = trees[0] / Path(cached).relative_to(pod.packages)
    assert os.stat(cached).st_ino == os.stat(tree_copy).st_ino

    restart = _boot(env, *argv)  # container restart: the packages dir still holds it
    assert restart.returncode == 0, restart.stderr
    assert "requirements: unchanged" in restart.stderr
    assert _heavy(_imported(restart.stderr)) == set()


def _start(pod: PodDirs, **env: str) -> tuple[InstallResult, list[str]]:
    logs: list[str] = []
    prepared = prepare("worker", ["true"], pod.env(**env), logs.append)
    assert prepared.requirements is not None
    return prepared.requirements, logs


def _new_pod(pod: PodDirs) -> None:
    shutil.rmtree(pod.packages, ignore_errors=True)


def test_changed_requirements_or_constraints_are_checked_again(tmp_path: Path) -> None:
    pod = PodDirs(tmp_path)
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("cowsay==6.1\n")
    pinned = {"AIRFLOW_PLATFORM_CONSTRAINTS": str(constraints)}
    pod.write_requirements("cowsay==6.1\ntoolz\n")
    cold, logs = _start(pod, **pinned)
    assert (cold.status, cold.checked) == ("installed", True)
    warning = "requirements.txt line 2: toolz is not pinned"
    assert any(line.startswith(warning) for line in logs)

    _new_pod(pod)
    warm, logs = _start(pod, **pinned)
    assert (warm.status, warm.checked) == ("tree-cache", False)
    assert any(line.startswith(warning) for line in logs)  # the checks' notes are repeated

    # A comment changes the file, not what gets installed: checked again, same tree.
    pod.write_requirements("cowsay==6.1  # the cow\ntoolz\n")
    _new_pod(pod)
    edited, _ = _start(pod, **pinned)
    assert (edited.status, edited.checked, edited.key) == ("tree-cache", True, warm.key)

    # New constraints: checked again, and now refused.
    constraints.write_text("cowsay==6.0\n")
    with pytest.raises(BootstrapError, match=r"conflicts with the constraint cowsay==6\.0"):
        _start(pod, **pinned)
    constraints.write_text("cowsay==6.1\n")
    again, _ = _start(pod, **pinned)
    assert (again.status, again.checked) == ("unchanged", False)


def test_a_changed_installed_set_is_checked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pod = PodDirs(tmp_path / "pod")
    pod.write_requirements("cowsay==6.1\n")
    first, _ = _start(pod)  # constraints: the installed distributions
    assert first.checked
    assert _start(pod)[0].checked is False

    site = tmp_path / "site"
    (site / "airflow_platform_probe-1.0.dist-info").mkdir(parents=True)
    monkeypatch.syspath_prepend(str(site))
    more, _ = _start(pod)
    # The installed set is also the constraints here, so the resolution is redone too.
    assert (more.status, more.checked) == ("installed", True)

    # The image now ships cowsay 6.0: the installed set is the constraint, so 6.1 conflicts.
    (site / "cowsay-6.0.dist-info").mkdir()
    with pytest.raises(BootstrapError, match=r"conflicts with the constraint cowsay==6\.0"):
        _start(pod)


def test_pods_starting_together_share_one_cache(tmp_path: Path) -> None:
    pods = [PodDirs(tmp_path / name) for name in ("a", "b")]
    pods[0].write_requirements("cowsay==6.1\niso8601==2.1.0\n")
    shared = {
        "AIRFLOW_PLATFORM_SYNC_ROOT": str(pods[0].layout.root),
        "AIRFLOW_PLATFORM_WHEEL_CACHE": str(tmp_path / "shared-cache"),
    }
    argv = [CLI, "bootstrap", "--component", "worker", "--", sys.executable, "-c", "import cowsay"]
    procs = [
        subprocess.Popen(argv, env=pod.env(**shared), stderr=subprocess.PIPE, text=True)
        for pod in pods
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    cache = tmp_path / "shared-cache"
    for folder in ("trees", "resolved", "inputs"):
        names = sorted(p.name for p in (cache / folder).iterdir())
        assert len(names) == 1 and not names[0].startswith("."), (folder, names)

    late = PodDirs(tmp_path / "c")
    out = subprocess.run(argv, env=late.env(**shared), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "requirements: tree-cache" in out.stderr


# -- the CLI's fast path ------------------------------------------------------------------
TYPER_CLI = "from airflow_platform.cli import app; app()"
SHOW = "import os, sys; print(os.environ['MWAA_AIRFLOW_COMPONENT'], sys.argv[1:])"


@pytest.mark.parametrize(
    ("args", "code", "output"),
    [
        (["bootstrap", "--component", "worker", "--", sys.executable, "-c", SHOW, "a b"], 0,
         "worker ['a b']"),
        (["bootstrap", "--component=api-server", "--", sys.executable, "-c", SHOW], 0,
         "webserver []"),
        (["bootstrap", "--component", "webserver", "--", "true"], 3,
         "--component 'webserver' is not known"),
        (["bootstrap", "--component", "worker", "--", "no-such-command-here"], 3,
         "cannot run 'no-such-command-here'"),
    ],
)  # fmt: skip
def test_fast_path_and_typer_behave_the_same(
    tmp_path: Path, args: list[str], code: int, output: str
) -> None:
    env = PodDirs(tmp_path).env()
    fast = _boot(env, *args)
    typer_run = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", TYPER_CLI, *args],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "typer" not in _imported(fast.stderr)
    assert "typer" in _imported(typer_run.stderr)

    def visible(run: subprocess.CompletedProcess[str]) -> tuple[int, str, str]:
        lines = [line for line in run.stderr.splitlines() if not line.startswith("import time:")]
        return run.returncode, run.stdout, "\n".join(lines)

    assert visible(fast) == visible(typer_run)
    assert fast.returncode == code
    assert output in fast.stdout + fast.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["bootstrap", "--component", "worker", "--", "airflow", "scheduler"],
         ("worker", ["airflow", "scheduler"])),
        (["bootstrap", "--component=worker", "--", "airflow", "--", "x"],
         ("worker", ["airflow", "--", "x"])),
        (["bootstrap", "--component", "worker", "--"], None),  # no command: typer says so
        (["bootstrap", "--component", "worker", "airflow"], None),  # no --
        (["bootstrap", "--component", "--", "airflow"], None),
        (["bootstrap", "--component=", "--", "airflow"], None),
        (["bootstrap", "--help"], None),
        (["bootstrap", "--component", "worker", "--help", "--", "x"], None),
        (["dagsync", "--component", "worker", "--", "airflow"], None),
        ([], None),
    ],
)  # fmt: skip
def test_only_the_exact_bootstrap_form_takes_the_fast_path(
    args: list[str], expected: tuple[str, list[str]] | None
) -> None:
    assert bootstrap_request(args) == expected


def test_publishing_a_tree_drops_stale_staging_but_not_fresh(tmp_path: Path) -> None:
    """A pod killed mid-publish leaves a staging tree; the next publish removes it once it is
    old enough that nobody can still be writing it."""
    cache = TreeCache(tmp_path / "cache")
    trees = tmp_path / "cache" / "trees"
    stale, fresh = trees / f".{'a' * 64}.x1.partial", trees / f".{'b' * 64}.x2.partial"
    for leftover in (stale, fresh):
        (leftover / "pkg").mkdir(parents=True)
    old = time.time() - STALE_STAGING_SECONDS - 60
    os.utime(stale, (old, old))
    source = tmp_path / "installed"
    (source / "pkg").mkdir(parents=True)
    (source / "pkg" / "__init__.py").write_text("x = 1\n")
    key = "c" * 64
    (source / MARKER).write_text(key + "\n")
    cache.publish(source, key)
    assert cache.has_tree(key)
    assert not stale.exists() and fresh.exists()
