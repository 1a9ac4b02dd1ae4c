"""requirements.txt: real installs from the package index into a temp packages dir."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from boot_helpers import PodDirs

from airflow_platform.bootstrap.entrypoint import BootstrapError, prepare
from airflow_platform.bootstrap.tree_cache import MARKER

CLI = str(Path(sys.executable).parent / "airflow-platform")
REQS = "cowsay==6.1\niso8601==2.1.0\nsix  # already in the image\n"

pytestmark = pytest.mark.integration


def _start(pod: PodDirs, **env: str):
    logs: list[str] = []
    prepared = prepare("worker", ["airflow", "celery", "worker"], pod.env(**env), logs.append)
    return prepared, logs


def _importable(prepared, module: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", f"import {module}; print({module}.__file__)"],
        env=prepared.environment, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_install_then_every_cache_path(tmp_path: Path) -> None:
    pod = PodDirs(tmp_path)
    pod.write_requirements(REQS)
    cold, logs = _start(pod)
    assert cold.requirements.status == "installed"
    # Only what the image lacks lands in the packages dir: six is already installed.
    assert cold.requirements.packages == ["cowsay-6.1", "iso8601-2.1.0"]
    assert _importable(cold, "cowsay").startswith(str(pod.packages))
    assert cold.environment["PYTHONPATH"].split(":")[0] == str(pod.packages)
    assert any("six is not pinned" in line for line in logs)

    # Container restart: the packages dir (an emptyDir) still holds this install.
    restart, _ = _start(pod)
    assert restart.requirements.status == "unchanged"

    # New pod: empty packages dir, the cache holds the installed tree.
    for child in pod.packages.iterdir():
        subprocess.run(["rm", "-rf", str(child)], check=True)
    warm, _ = _start(pod)
    assert warm.requirements.status == "tree-cache"
    assert (pod.packages / MARKER).read_text().strip() == warm.requirements.key
    assert _importable(warm, "iso8601").startswith(str(pod.packages))

    # The wheel-cache strategy: the cached resolution installed offline from uv's cache.
    subprocess.run(["rm", "-rf", str(pod.packages)], check=True)
    wheels, _ = _start(pod, AIRFLOW_PLATFORM_REQUIREMENTS_CACHE="wheels", UV_OFFLINE="1")
    assert wheels.requirements.status == "wheel-cache"
    assert _importable(wheels, "cowsay").startswith(str(pod.packages))

    # A changed requirements.txt is a new key: installed afresh.
    pod.write_requirements("cowsay==6.0\n")
    changed, _ = _start(pod)
    assert changed.requirements.status == "installed"
    assert changed.requirements.packages == ["cowsay-6.0"]
    assert not (pod.packages / "iso8601").exists()


def test_essential_package_cannot_be_overridden(tmp_path: Path) -> None:
    pod = PodDirs(tmp_path)
    pod.write_requirements("cowsay==6.1\napache-airflow==2.10.3\ncelery<5\n")
    with pytest.raises(BootstrapError) as caught:
        _start(pod)
    message = str(caught.value)
    assert "line 2: apache-airflow==2.10.3 would replace apache-airflow 3.3.2" in message
    assert "line 3: celery<5 would replace celery" in message
    assert "AIRFLOW_PLATFORM_REQUIREMENTS_ON_FAILURE=continue" in message
    assert not (pod.packages / "cowsay").exists()


def test_a_dependency_that_needs_another_airflow_is_refused(tmp_path: Path) -> None:
    pod = PodDirs(tmp_path)
    # sqlmodel 0.0.8 needs SQLAlchemy<=1.4.41 and pydantic<2: the constraints forbid both.
    pod.write_requirements("sqlmodel==0.0.8\n")
    with pytest.raises(BootstrapError, match=r"resolving requirements\.txt failed"):
        _start(pod)


def test_fail_closed_by_default_and_continue_when_told(tmp_path: Path) -> None:
    pod = PodDirs(tmp_path)
    pod.write_requirements("cowsay==6.1\nno-such-package-airflow-platform-test==1.0\n")
    with pytest.raises(BootstrapError) as caught:
        _start(pod)
    assert "no-such-package-airflow-platform-test" in str(caught.value)
    assert not pod.packages.exists() or not any(pod.packages.iterdir())

    logs: list[str] = []
    prepared = prepare(
        "worker",
        ["airflow", "celery", "worker"],
        pod.env(AIRFLOW_PLATFORM_REQUIREMENTS_ON_FAILURE="continue"),
        logs.append,
    )
    assert any("continuing WITHOUT requirements" in line for line in logs)
    assert str(pod.packages) not in prepared.environment.get("PYTHONPATH", "")


def test_syntax_errors_name_the_line(tmp_path: Path) -> None:
    pod = PodDirs(tmp_path)
    pod.write_requirements("cowsay==6.1\n\n# comment\ntabulate>=>1\n-e git+https://x/y\n")
    with pytest.raises(BootstrapError) as caught:
        _start(pod)
    assert "line 4: not a valid requirement 'tabulate>=>1'" in str(caught.value)
    assert "line 5: -e is not supported" in str(caught.value)


def test_requirements_test_cli(tmp_path: Path) -> None:
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("# pins\niso8601==2.1.0\ncowsay==6.1\n")
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(
        "--constraint https://raw.githubusercontent.com/apache/airflow/constraints-2.10.3/c.txt\n"
        "iso8601==2.0.0\n"  # conflicts with the constraints
        "cowsay\n"  # unpinned, constraints decide
        "sqlalchemy==1.4.54\n"  # an essential package
        "toolz\n"  # unpinned, no constraint
        "bad requirement here\n"
    )
    out = subprocess.run(
        [CLI, "requirements", "test", str(reqs), "--constraints", str(constraints)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 1
    text = out.stdout
    assert "line 1: --constraint" in text and "ignored" in text
    assert "line 2: iso8601==2.0.0 conflicts with the constraint iso8601==2.1.0" in text
    assert "line 3: cowsay is not pinned; the constraints will install 6.1" in text
    assert "line 4: sqlalchemy==1.4.54 would replace sqlalchemy" in text
    assert "line 5: toolz is not pinned" in text
    assert "line 6: not a valid requirement" in text
    assert "3 error(s)" in text

    reqs.write_text("iso8601==2.1.0\ncowsay==6.1\n")
    ok = subprocess.run(
        [CLI, "requirements", "test", str(reqs), "--constraints", str(constraints)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stdout
    assert "0 error(s), 0 warning(s)" in ok.stdout


def test_bundle_installs_offline_from_the_plugins_folder(tmp_path: Path) -> None:
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("cowsay==6.1\niso8601==2.1.0\nsix==1.17.0\n")
    bundle = tmp_path / "bundle.zip"
    out = subprocess.run(
        [CLI, "requirements", "package", str(reqs), "-o", str(bundle)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    with zipfile.ZipFile(bundle) as archive:
        names = sorted(archive.namelist())
        assert names == [
            "wheels/bundle.json",
            "wheels/cowsay-6.1-py3-none-any.whl",
            "wheels/iso8601-2.1.0-py3-none-any.whl",
            "wheels/requirements.lock.txt",
        ]
        pod = PodDirs(tmp_path / "pod")
        archive.extractall(pod.make_plugins())  # as plugins.zip unpacks into the plugins folder
    pod.write_requirements(reqs.read_text())
    # No index at all: an unreachable index URL and an empty uv cache.
    prepared, _ = _start(pod, UV_INDEX_URL="http://127.0.0.1:9/simple", UV_OFFLINE="1")
    assert prepared.requirements.status == "installed"
    assert prepared.requirements.offline_bundle == pod.layout.plugins / "wheels"
    assert _importable(prepared, "cowsay").startswith(str(pod.packages))
    assert str(pod.layout.plugins) in prepared.environment["PYTHONPATH"].split(":")


def test_hash_checking_mode_installs_wheels_whose_hashes_match(tmp_path: Path) -> None:
    from boot_helpers import build_wheel, sha256_of

    wheels = tmp_path / "wheels"
    demo = build_wheel(wheels, "hash-demo", "1.0")
    other = build_wheel(wheels, "hash-other", "2.0")
    pod = PodDirs(tmp_path / "pod")
    pod.write_requirements(
        f"--require-hashes\n--no-index\n--find-links {wheels}\n"
        f"hash-demo==1.0 --hash={sha256_of(demo)}\n"
        f"hash-other==2.0 \\\n    --hash=sha256:{'a' * 64} \\\n    --hash={sha256_of(other)}\n"
    )
    prepared, _ = _start(pod)
    assert prepared.requirements.status == "installed"
    assert prepared.requirements.packages == ["hash_demo-1.0", "hash_other-2.0"]
    assert _importable(prepared, "hash_other").startswith(str(pod.packages))
