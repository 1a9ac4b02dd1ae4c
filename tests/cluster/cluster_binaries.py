"""The control-plane binaries (etcd, kube-apiserver, kube-controller-manager, kube-scheduler).

They are built once per machine by scripts/kube/build.sh and cached outside the repository,
keyed by version; this module finds them or runs the build, streaming its progress."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

KUBE_VERSION = "1.20.2"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "scripts" / "kube" / "build.sh"


def cache_dir() -> Path:
    """Same rule as build.sh: $KUBE_CACHE, else <cache root>/airflow-platform/kube-<version>."""
    if os.environ.get("KUBE_CACHE"):
        return Path(os.environ["KUBE_CACHE"])
    root = os.environ.get("AIRFLOW_PLATFORM_CACHE") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "airflow-platform"
    )
    return Path(root) / f"kube-{KUBE_VERSION}"


def ensure_binaries(progress: Callable[[str], None]) -> Path:
    """Return the bin directory, building the binaries first on a fresh machine."""
    bin_dir = cache_dir() / "bin"
    if all(os.access(bin_dir / name, os.X_OK) for name in BINARIES):
        return bin_dir
    progress(f"building the Kubernetes {KUBE_VERSION} control plane once for this machine")
    proc = subprocess.Popen(
        [str(BUILD_SCRIPT)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    for line in proc.stdout:
        lines.append(line.rstrip())
        progress(line.rstrip())
    if proc.wait() != 0:
        tail = "\n".join(lines[-30:])
        raise RuntimeError(f"{BUILD_SCRIPT} failed (exit {proc.returncode}):\n{tail}")
    missing = [name for name in BINARIES if not os.access(bin_dir / name, os.X_OK)]
    if missing:
        raise RuntimeError(f"{BUILD_SCRIPT} finished but {missing} are missing in {bin_dir}")
    return bin_dir
