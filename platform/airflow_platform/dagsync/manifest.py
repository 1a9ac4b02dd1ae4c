"""The manifest: what one published version holds (key, ETag, size, version id), and the
mapping from S3 keys to safe local paths."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

MAX_NAME_BYTES = 255  # a single path component on Linux filesystems


@dataclass(frozen=True)
class ObjectEntry:
    key: str
    etag: str
    size: int
    version_id: str = ""
    last_modified: float = 0.0

    def same_content(self, other: ObjectEntry) -> bool:
        # ETag + size identify the bytes; version id is not in ListObjectsV2 output.
        return self.etag == other.etag and self.size == other.size


def clean_etag(etag: str) -> str:
    return etag.strip().strip('"')


def local_path(key: str, prefix: str) -> str | None:
    """The relative local path for `key`, or None when the key cannot be a file here.

    Keys ending in "/" are folder markers; keys with empty, "." or ".." segments, NUL, or
    components longer than the filesystem allows would escape or break the tree.
    """
    if not key.startswith(prefix) or key.endswith("/"):
        return None
    rel = key[len(prefix) :]
    if not rel or "\x00" in rel:
        return None
    parts = rel.split("/")
    for part in parts:
        if part in ("", ".", "..") or len(part.encode()) > MAX_NAME_BYTES:
            return None
    return rel


@dataclass
class Manifest:
    """Entries by relative local path; written next to each version's tree."""

    entries: dict[str, ObjectEntry] = field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        return sum(e.size for e in self.entries.values())

    def save(self, path: Path) -> None:
        # Field by field: dataclasses.asdict deep-copies and costs ~30 us an entry.
        entries = {
            p: {
                "key": e.key,
                "etag": e.etag,
                "size": e.size,
                "version_id": e.version_id,
                "last_modified": e.last_modified,
            }
            for p, e in sorted(self.entries.items())
        }
        data = {"format": 1, "entries": entries}
        path.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")))

    @classmethod
    def load(cls, path: Path) -> Manifest:
        data = json.loads(path.read_text())
        return cls({p: ObjectEntry(**e) for p, e in data["entries"].items()})


def drop_path_conflicts(
    entries: dict[str, ObjectEntry],
) -> tuple[dict[str, ObjectEntry], list[str]]:
    """S3 can hold both "a" and "a/b"; a filesystem cannot. The folder wins (it holds
    more), the lone object is skipped and reported."""
    folders: set[str] = set()
    for rel in entries:
        parts = rel.split("/")
        for i in range(1, len(parts)):
            folders.add("/".join(parts[:i]))
    kept = {rel: e for rel, e in entries.items() if rel not in folders}
    skipped = sorted(entries[rel].key for rel in entries if rel in folders)
    return kept, skipped


@dataclass(frozen=True)
class Diff:
    added: list[str]
    changed: list[str]
    deleted: list[str]
    unchanged: list[str]

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.deleted)


def diff(previous: Manifest, desired: dict[str, ObjectEntry]) -> Diff:
    added, changed, unchanged = [], [], []
    for rel, entry in desired.items():
        old = previous.entries.get(rel)
        if old is None:
            added.append(rel)
        elif old.same_content(entry) and old.key == entry.key:
            unchanged.append(rel)
        else:
            changed.append(rel)
    deleted = [rel for rel in previous.entries if rel not in desired]
    return Diff(sorted(added), sorted(changed), sorted(deleted), unchanged)
