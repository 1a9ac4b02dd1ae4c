"""Build (or find cached) the base image and the platform image.

Each image is tagged with a hash of everything that goes into it, so a tag that exists is
an up-to-date cache hit and any change to an input builds anew:
- base: platform/base-image/{build.sh,Containerfile} and platform/constraints.txt;
- platform: the base's key, platform/Dockerfile, .dockerignore, pyproject.toml, README.md,
  platform/constraints.txt, the package source and dags/platform.
Images live in podman's store; the debootstrapped root filesystem (the slow, network-bound
step) is kept as a tarball in the cache directory ($AIRFLOW_PLATFORM_CACHE, else
~/.cache/airflow-platform), keyed on build.sh.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from airflow_platform import __version__
from airflow_platform.image import podman
from airflow_platform.image.podman import REPO, PodmanError

BASE_RECIPE = REPO / "platform" / "base-image"
CONSTRAINTS = REPO / "platform" / "constraints.txt"
DOCKERFILE = REPO / "platform" / "Dockerfile"
PACKAGE = REPO / "platform" / "airflow_platform"
BASE_REPOSITORY = "localhost/airflow-platform-base"
PLATFORM_REPOSITORY = "localhost/airflow-platform"


def cache_dir() -> Path:
    root = os.environ.get("AIRFLOW_PLATFORM_CACHE") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "airflow-platform"
    )
    return Path(root) / "images"


def _digest(files: list[Path], *extra: str) -> str:
    h = hashlib.sha256()
    for value in extra:
        h.update(value.encode() + b"\0")
    for path in sorted(files):
        h.update(path.relative_to(REPO).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _package_files() -> list[Path]:
    """The package source and the platform's own DAGs (the image copies both)."""
    return [
        p
        for root in (PACKAGE, REPO / "dags" / "platform")
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    ]


def base_key() -> str:
    return _digest([BASE_RECIPE / "build.sh", BASE_RECIPE / "Containerfile", CONSTRAINTS])


def platform_key() -> str:
    inputs = [DOCKERFILE, REPO / ".dockerignore", REPO / "pyproject.toml", REPO / "README.md"]
    return _digest([*inputs, CONSTRAINTS, *_package_files()], base_key())


def rootfs_tarball() -> Path:
    return cache_dir() / f"debian-bookworm-{_digest([BASE_RECIPE / 'build.sh'])}.tar"


@dataclass(frozen=True)
class Built:
    tag: str
    seconds: float
    cached: bool  # the tag already existed: nothing was built


@contextmanager
def _build_lock() -> Iterator[None]:
    """One build at a time per machine (a test run and a benchmark may ask together)."""
    cache_dir().mkdir(parents=True, exist_ok=True)
    with (cache_dir() / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_base(progress: Callable[[str], None] = print, fresh: bool = False) -> Built:
    """The base image; `fresh` rebuilds it from nothing (debootstrap included)."""
    tag = f"{BASE_REPOSITORY}:{base_key()}"
    began = time.monotonic()
    podman.require("podman", "buildah", "debootstrap")
    with _build_lock():
        if fresh:
            rootfs_tarball().unlink(missing_ok=True)
        elif podman.image_exists(tag):
            return Built(tag, time.monotonic() - began, cached=True)
        progress(f"building the base image {tag} (debootstrap + Airflow; minutes when cold)")
        result = subprocess.run(
            [str(BASE_RECIPE / "build.sh"), tag, str(rootfs_tarball())],
            env=podman.env(),
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise PodmanError(
                f"platform/base-image/build.sh failed ({result.returncode}):\n"
                f"{(result.stderr + result.stdout).strip()[-3000:]}"
            )
    return Built(tag, time.monotonic() - began, cached=False)


def ensure_platform(
    progress: Callable[[str], None] = print,
    extra_tags: tuple[str, ...] = (),
    fresh: bool = False,
) -> tuple[Built, Built]:
    """The base, then platform/Dockerfile on it; returns both (cached or built). `fresh`
    rebuilds both from nothing."""
    base = ensure_base(progress, fresh=fresh)
    tag = f"{PLATFORM_REPOSITORY}:{platform_key()}"
    began = time.monotonic()
    with _build_lock():
        cached = podman.image_exists(tag) and not fresh
        if not cached:
            progress(f"building the platform image {tag} from platform/Dockerfile")
            mounts: list[str] = []
            if ca := podman.host_ca_bundle():
                mounts = ["-v", f"{ca}:/etc/ssl/certs/ca-certificates.crt:ro"]
            podman.buildah(
                "bud",
                "--quiet",
                *podman.BUILD_ULIMITS,
                *mounts,
                "--build-arg",
                f"BASE_IMAGE={base.tag}",
                "-f",
                str(DOCKERFILE),
                "-t",
                tag,
                str(REPO),
            )
        for extra in extra_tags:
            podman.run("tag", tag, extra)
    return base, Built(tag, time.monotonic() - began, cached=cached)


def default_user_tag() -> str:
    return f"{PLATFORM_REPOSITORY}:{__version__}"
