"""Unpack plugins.zip without trusting it.

Refused, with the entry named: absolute paths, `..`, backslashes, symlinks and device or
other special files (Unix mode in the external attributes), encrypted entries, duplicate
or file/folder-conflicting names, more entries or bytes than allowed, and compression
bombs. Sizes are enforced on the bytes actually inflated, not on what the headers claim.
"""

from __future__ import annotations

import os
import stat
import zipfile
import zlib
from pathlib import Path

CHUNK = 256 * 1024
# Source code compresses 3-10x; a bomb compresses thousands of times. Ratios are only
# judged past a floor so a tiny, highly repetitive file is not mistaken for one.
MAX_ENTRY_RATIO = 200
ENTRY_RATIO_FLOOR = 1024 * 1024
MAX_TOTAL_RATIO = 100
TOTAL_RATIO_FLOOR = 16 * 1024 * 1024


class UnsafeArchive(ValueError):
    """The archive is refused; the message says which entry and why."""


def _check_name(name: str) -> list[str]:
    if not name or "\x00" in name:
        raise UnsafeArchive(f"entry {name!r} has an empty or NUL-containing name")
    if "\\" in name:
        raise UnsafeArchive(f"entry {name!r} uses backslashes; build the zip with '/' paths")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchive(f"entry {name!r} is an absolute path; store paths relative")
    parts = [p for p in name.rstrip("/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchive(f"entry {name!r} climbs out of the plugins folder with '..'")
    if not parts:
        raise UnsafeArchive(f"entry {name!r} names no file")
    return parts


def _check_type(info: zipfile.ZipInfo) -> bool:
    """True for a folder, False for a regular file; anything else is refused."""
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if kind == stat.S_IFLNK:
        raise UnsafeArchive(f"entry {info.filename!r} is a symbolic link; store the file itself")
    if kind in (stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO, stat.S_IFSOCK):
        raise UnsafeArchive(f"entry {info.filename!r} is a device or special file")
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise UnsafeArchive(f"entry {info.filename!r} has an unknown file type {oct(kind)}")
    return info.is_dir() or kind == stat.S_IFDIR


def extract(archive: Path, dest: Path, *, max_entries: int, max_bytes: int) -> tuple[int, int]:
    """Unpack `archive` into the empty folder `dest`; return (files, bytes).
    On UnsafeArchive the caller discards `dest`."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UnsafeArchive(f"not a readable zip archive: {exc}") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > max_entries:
            raise UnsafeArchive(
                f"{len(infos)} entries exceed the limit of {max_entries} "
                "(raise --plugins-max-entries if this is intended)"
            )
        plan: list[tuple[zipfile.ZipInfo, list[str], bool]] = []
        seen: set[str] = set()
        for info in infos:
            parts = _check_name(info.filename)
            is_dir = _check_type(info)
            if info.flag_bits & 0x1:
                raise UnsafeArchive(f"entry {info.filename!r} is encrypted")
            rel = "/".join(parts)
            if rel in seen and not is_dir:
                raise UnsafeArchive(f"entry {info.filename!r} appears twice")
            seen.add(rel)
            plan.append((info, parts, is_dir))
        files = {"/".join(p) for _, p, d in plan if not d}
        for rel in files:
            parts = rel.split("/")
            for i in range(1, len(parts)):
                if "/".join(parts[:i]) in files:
                    raise UnsafeArchive(f"{'/'.join(parts[:i])!r} is both a file and a folder")
        # Cheap early refusal on the declared sizes; the real limit is enforced below.
        declared = sum(i.file_size for i, _, d in plan if not d)
        if declared > max_bytes:
            raise UnsafeArchive(
                f"uncompressed size {declared} bytes exceeds the limit of {max_bytes} "
                "(raise --plugins-max-bytes if this is intended)"
            )
        try:
            return _inflate(zf, plan, dest, max_bytes, max(archive.stat().st_size, 1))
        except (zipfile.BadZipFile, NotImplementedError, EOFError, zlib.error) as exc:
            raise UnsafeArchive(f"corrupt or unsupported entry: {exc}") from None


def _inflate(
    zf: zipfile.ZipFile,
    plan: list[tuple[zipfile.ZipInfo, list[str], bool]],
    dest: Path,
    max_bytes: int,
    archive_size: int,
) -> tuple[int, int]:
    total = 0
    count = 0
    for info, parts, is_dir in plan:
        target = dest.joinpath(*parts)
        if is_dir:
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        executable = bool((info.external_attr >> 16) & 0o111)
        written = 0
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        fd = os.open(target, flags, 0o755 if executable else 0o644)
        with os.fdopen(fd, "wb") as out, zf.open(info) as src:
            while chunk := src.read(CHUNK):
                written += len(chunk)
                total += len(chunk)
                if total > max_bytes:
                    raise UnsafeArchive(
                        f"inflating {info.filename!r} passed the limit of {max_bytes} bytes "
                        "(raise --plugins-max-bytes if this is intended)"
                    )
                if written > ENTRY_RATIO_FLOOR and written > MAX_ENTRY_RATIO * max(
                    info.compress_size, 1
                ):
                    raise UnsafeArchive(
                        f"entry {info.filename!r} inflates more than {MAX_ENTRY_RATIO}x "
                        "(compression bomb)"
                    )
                if total > TOTAL_RATIO_FLOOR and total > MAX_TOTAL_RATIO * archive_size:
                    raise UnsafeArchive(
                        f"the archive inflates more than {MAX_TOTAL_RATIO}x its size "
                        "(compression bomb)"
                    )
                out.write(chunk)
        count += 1
    return count, total
