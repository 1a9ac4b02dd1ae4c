"""podman and buildah as this project runs them: the project's containers.conf (runc, the
cgroupfs manager, nofile/nproc ulimits a machine without CAP_SYS_RESOURCE can grant),
never the machine's /etc."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
CONTAINERS_CONF = REPO / "platform" / "containers" / "containers.conf"
BUILDAH_GLOBAL = ["--runtime", "runc", "--cgroup-manager", "cgroupfs"]
BUILD_ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
DEBIAN_PACKAGES = "podman buildah debootstrap runc"


class PodmanError(RuntimeError):
    """podman or buildah cannot do what was asked; the message says why and the fix."""


def env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def require(*tools: str) -> None:
    missing = [t for t in tools if not shutil.which(t)]
    if missing:
        raise PodmanError(
            f"{', '.join(missing)} not found on PATH: run ./scripts/bootstrap.sh (it installs "
            f"Debian's {DEBIAN_PACKAGES}) or `apt-get install {DEBIAN_PACKAGES}`"
        )


def run(
    *args: str, check: bool = True, timeout: float | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["podman", *args],
        env=env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
    )
    if check and result.returncode != 0:
        raise PodmanError(
            f"`podman {' '.join(args)[:300]}` failed ({result.returncode}):\n"
            f"{(result.stderr or result.stdout).strip()[-2000:]}"
        )
    return result


def buildah(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["buildah", *BUILDAH_GLOBAL, *args], env=env(), capture_output=True, text=True
    )
    if result.returncode != 0:
        raise PodmanError(
            f"`buildah {' '.join(args)[:300]}` failed ({result.returncode}):\n"
            f"{(result.stderr + result.stdout).strip()[-3000:]}"
        )
    return result


def image_exists(tag: str) -> bool:
    return run("image", "exists", tag, check=False).returncode == 0


def image_size(tag: str) -> int:
    return int(run("image", "inspect", "--format", "{{.Size}}", tag).stdout.strip())


def host_ca_bundle() -> Path | None:
    """The machine's CA bundle, mounted into build steps that reach PyPI (some networks
    intercept HTTPS with a CA of their own); never copied into an image."""
    for candidate in (os.environ.get("SSL_CERT_FILE"), "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None
