"""The key of a start's raw inputs, computed with the standard library only.

Everything the requirements checks and the resolution read goes in: requirements.txt's
bytes, the constraints file's bytes, the installed distributions (their
`name-version.dist-info` folder names, which is what the checks read), the sync root
(MWAA paths in requirements.txt map to it), the interpreter and platform, and the wheel
bundle. The checks are a pure function of these, so a start whose key was seen before
can reuse that start's outcome without importing the checker or the installer.
"""

from __future__ import annotations

import hashlib
import os
import sys
import sysconfig
from pathlib import Path

from airflow_platform.bootstrap.settings import BootstrapSettings
from airflow_platform.paths import SyncLayout

CACHE_FORMAT = "3"  # bump when the cache layout changes (2: bytecode, 3: file digests)
BUNDLE_DIR = "wheels"  # inside the plugins folder: a bundle from `requirements package`
_METADATA_SUFFIXES = (".dist-info", ".egg-info")


def find_bundle(layout: SyncLayout) -> Path | None:
    """A wheel bundle unpacked into the plugins folder (private networks)."""
    candidate = layout.plugins / BUNDLE_DIR
    if candidate.is_dir() and any(candidate.glob("*.whl")):
        return candidate
    return None


def is_under(path: str, excluded: tuple[str, ...]) -> bool:
    """`path` (already resolved) is one of `excluded` or inside one."""
    return any(path == e or path.startswith(e.rstrip(os.sep) + os.sep) for e in excluded)


def _metadata_stamp(path: str) -> str:
    """No version in the folder name: the checks read the metadata file, so its change
    must change the key."""
    for candidate in (f"{path}/METADATA", f"{path}/PKG-INFO", path):
        try:
            stat = os.stat(candidate)
        except OSError:
            continue
        if not os.path.isdir(candidate):
            return f"@{stat.st_mtime_ns}:{stat.st_size}"
    return "@?"


def installed_fingerprint(exclude: tuple[Path, ...] = ()) -> bytes:
    """The distribution folders on sys.path, in the order the installed set is built from
    (first one of a name wins), so equal fingerprints mean equal installed sets."""
    excluded = tuple(os.path.realpath(p) for p in exclude)
    parts: list[str] = []
    for entry in sys.path:
        if not entry or not os.path.isdir(entry) or is_under(os.path.realpath(entry), excluded):
            continue
        for name in sorted(os.listdir(entry)):
            if not name.endswith(_METADATA_SUFFIXES):
                continue
            _, sep, version = name.rsplit(".", 1)[0].partition("-")
            if not sep or not version.split("-py", 1)[0]:
                name += _metadata_stamp(os.path.join(entry, name))
            parts.append(name)
    return "\n".join(parts).encode()


def inputs_key(settings: BootstrapSettings, requirements: bytes) -> str:
    digest = hashlib.sha256()

    def part(data: bytes | str) -> None:
        raw = data.encode() if isinstance(data, str) else data
        digest.update(len(raw).to_bytes(8, "big"))  # length-prefixed: no ambiguous joins
        digest.update(raw)

    part(CACHE_FORMAT)
    part(requirements)
    part(str(settings.layout.root))
    if settings.constraints is None:
        part("constraints: installed")
    else:
        part(f"constraints: {settings.constraints}")
        try:
            part(settings.constraints.read_bytes())
        except OSError:
            part("missing")  # the checks refuse this start; nothing is cached for it
    part(installed_fingerprint(exclude=(settings.packages_dir,)))
    for value in (
        sys.version,
        sys.executable,
        sys.implementation.cache_tag or "",
        sysconfig.get_platform(),
    ):
        part(value)
    bundle = find_bundle(settings.layout)
    if bundle is None:
        part("no bundle")
    else:
        part("\n".join(sorted(p.name for p in bundle.glob("*.whl"))))
        for name in ("bundle.json", "requirements.lock.txt"):
            try:
                part((bundle / name).read_bytes())
            except OSError:
                part("missing")
    return digest.hexdigest()
