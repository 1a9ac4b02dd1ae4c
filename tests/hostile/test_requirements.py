"""Hostile requirements.txt: refused with the line and the fix, and the install the pod
already had is kept.

Every case starts from a pod that installed a local wheel (pinned with its real hash) and
then gets the hostile file; no package index is involved.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from bootstrap.boot_helpers import PodDirs, build_wheel, sha256_of

from airflow_platform.bootstrap.entrypoint import BootstrapError, prepare
from airflow_platform.bootstrap.tree_cache import MARKER, TreeCache


@dataclass
class InstalledPod:
    pod: PodDirs
    wheels: Path
    key: str  # the install the pod holds
    good: str  # the requirements.txt that made it

    def start(self):
        return prepare("worker", ["true"], self.pod.env(), log=lambda _: None)


@pytest.fixture
def installed(tmp_path: Path) -> InstalledPod:
    wheels = tmp_path / "wheels"
    probe = build_wheel(wheels, "req-probe", "1.0")
    build_wheel(wheels, "req-probe", "1.1", body="VALUE = 2\n")
    build_wheel(wheels, "dep-child", "1.0")
    build_wheel(wheels, "dep-parent", "1.0", requires="dep-child==1.0")
    pod = PodDirs(tmp_path / "pod")
    good = f"--no-index\n--find-links {wheels}\nreq-probe==1.0 --hash={sha256_of(probe)}\n"
    pod.write_requirements(good)
    first = prepare("worker", ["true"], pod.env(), log=lambda _: None)
    assert first.requirements is not None and first.requirements.status == "installed"
    return InstalledPod(pod, wheels, first.requirements.key or "", good)


def _hash(installed: InstalledPod, name: str, version: str) -> str:
    module = name.replace("-", "_")
    return sha256_of(installed.wheels / f"{module}-{version}-py3-none-any.whl")


# (id, the hostile lines after the index options (lines 3...), fragments of the message)
CASES: list[tuple[str, str, list[str]]] = [
    (
        "essential-airflow",
        "apache-airflow==2.10.3\n",
        ["line 3: apache-airflow==2.10.3 would replace apache-airflow", "remove the line"],
    ),
    (
        "essential-celery-range",
        "celery<5\n",
        ["line 3: celery<5 would replace celery", "remove the line"],
    ),
    (
        "include-another-file",
        "-r /etc/passwd\n",
        ["line 3: -r is not supported", "put every requirement in this one file"],
    ),
    (
        "editable-source",
        "-e git+https://example.com/x.git#egg=x\n",
        ["line 3: -e is not supported", "build a wheel instead"],
    ),
    (
        "unknown-option",
        "--use-feature=fast-deps\n",
        ["line 3: unknown option --use-feature", "supported:"],
    ),
    (
        "duplicate-package",
        "req-probe==1.0\nREQ_probe==1.0\n",
        ["line 4: REQ_probe is already required on line 3", "keep one line per package"],
    ),
    (
        "hash-missing-on-one-line",
        "req-probe==1.0 --hash={req-probe==1.0}\ndep-child==1.0\n",
        ["line 4: dep-child==1.0 has no --hash", "pip-compile --generate-hashes"],
    ),
    (
        "require-hashes-without-any",
        "--require-hashes\nreq-probe==1.0\n",
        ["line 4: req-probe==1.0 has no --hash", "every requirement needs its hashes"],
    ),
    (
        "hash-mode-range",
        "req-probe>=1.0 --hash={req-probe==1.0}\n",
        ["line 3: req-probe>=1.0 is not pinned to one version", "req-probe==X.Y.Z"],
    ),
    (
        "hash-of-a-weak-algorithm",
        "req-probe==1.0 --hash=md5:0cc175b9c0f1b6a831c399e269772661\n",
        ["line 3: --hash=md5:0cc175b9c0f1b6a831c399e269772661 is not a valid hash", "sha256"],
    ),
    (
        "dependency-without-a-hash",
        "dep-parent==1.0 --hash={dep-parent==1.0}\n",
        ["also needs dep-child==1.0", "add that line with its hashes"],
    ),
]


def _with_hashes(installed: InstalledPod, lines: str) -> str:
    for token in ("req-probe==1.0", "req-probe==1.1", "dep-parent==1.0", "dep-child==1.0"):
        name, version = token.split("==")
        lines = lines.replace("{" + token + "}", _hash(installed, name, version))
    return lines


@pytest.mark.parametrize(("lines", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_requirements_are_refused_and_the_install_is_kept(
    installed: InstalledPod, lines: str, expected: list[str]
) -> None:
    pod = installed.pod
    held = sorted(p.name for p in pod.packages.iterdir())
    pod.write_requirements(
        f"--no-index\n--find-links {installed.wheels}\n{_with_hashes(installed, lines)}"
    )
    with pytest.raises(BootstrapError) as caught:
        installed.start()
    message = str(caught.value)
    for fragment in expected:
        assert fragment in message, message
    assert "AIRFLOW_PLATFORM_REQUIREMENTS_ON_FAILURE=continue" in message
    # Refused before anything was installed: the pod keeps what it had.
    assert (pod.packages / MARKER).read_text().strip() == installed.key
    assert sorted(p.name for p in pod.packages.iterdir()) == held
    assert TreeCache(pod.cache).has_tree(installed.key)


def test_hash_mismatch_is_refused_and_the_previous_install_comes_back(
    installed: InstalledPod,
) -> None:
    """The 1.1 wheel offered under 1.0's hash: uv refuses it; nothing of 1.1 is installed,
    and going back to the previous file restores the previous install from the cache."""
    pod = installed.pod
    wrong = _hash(installed, "req-probe", "1.0")
    pod.write_requirements(
        f"--no-index\n--find-links {installed.wheels}\nreq-probe==1.1 --hash={wrong}\n"
    )
    with pytest.raises(BootstrapError) as caught:
        installed.start()
    message = str(caught.value)
    assert "Hash mismatch for `req-probe==1.1`" in message, message
    assert "check the hash" in message
    assert not list(pod.packages.glob("req_probe-1.1*"))  # glob of a missing dir is empty
    assert TreeCache(pod.cache).has_tree(installed.key)
    pod.write_requirements(installed.good)
    again = installed.start()
    assert again.requirements is not None
    assert again.requirements.status in ("tree-cache", "unchanged")
    assert again.requirements.key == installed.key
    assert again.requirements.packages == ["req_probe-1.0"]
