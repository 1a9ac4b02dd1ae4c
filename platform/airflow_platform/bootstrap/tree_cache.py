"""The cache directory's layout and the file operations on it, standard library only.

    trees/<key>/        an installed packages tree (with bytecode), published by rename,
                        with FILES: the SHA-256 of each of its files, written at publish
    resolved/<key>.txt  the pinned resolution behind that tree (for the wheel strategy)
    inputs/<inputs key> what a start with those raw inputs ended with: the tree key (or
                        "-" for nothing to install), then the checks' notes

The cache may be a volume shared by every pod of an environment (an EFS claim), so every
write lands under a unique temporary name first and is published by an atomic rename:
a reader sees a whole file or tree, or none. A restored tree is checked file by file
against FILES before it is used: a file changed, added or removed in the cache (a bad disk,
or anything with write access to a shared volume) is refused and installed afresh.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

MARKER = ".airflow-platform-requirements"  # tree key, in a tree and in the packages dir
INPUTS_MARKER = ".airflow-platform-inputs"  # packages dir only: the inputs key, then the entry
FILES = ".airflow-platform-files.json"  # in a tree: {path: sha256 or "->" + link target}
_UNHASHED = frozenset((MARKER, INPUTS_MARKER, FILES))  # top-level bookkeeping files
_NOTHING = "-"
STALE_STAGING_SECONDS = 3600.0
_KEY_CHARS = frozenset("0123456789abcdef")


def _is_key(value: str) -> bool:
    return len(value) == 64 and set(value) <= _KEY_CHARS


class InputsEntry:
    """The outcome of a start: which tree ("" when there was nothing to install), and
    the notes its checks logged."""

    __slots__ = ("key", "notes")  # a plain class: see result.InstallResult

    def __init__(self, key: str, notes: tuple[str, ...] = ()) -> None:
        self.key = key
        self.notes = notes

    def render(self) -> str:
        notes = (note.replace("\n", " ") for note in self.notes)  # one line each
        return "\n".join([self.key or _NOTHING, *notes]) + "\n"

    @classmethod
    def parse(cls, text: str) -> InputsEntry | None:
        lines = text.splitlines()
        if not lines or not (lines[0] == _NOTHING or _is_key(lines[0])):
            return None  # not written by this version: treat as a miss
        return cls("" if lines[0] == _NOTHING else lines[0], tuple(lines[1:]))


def read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def write_atomic(path: Path, text: str, shared: bool = True) -> None:
    """Write beside `path`, then rename over it: readers see the old or the new file.

    `shared` (the cache volume, written by many pods whose process ids collide): a unique
    temporary name and an fsync, so a crash never publishes a truncated file. Otherwise
    (the pod's own packages dir, gone with the pod) the process id is unique enough.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if not shared:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
        return
    import tempfile

    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(handle, 0o644)  # mkstemp's 0600 would hide it from other users of the cache
        with os.fdopen(handle, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise


def clear(directory: Path) -> None:
    """Empty `directory`, markers first: an interrupted clear never looks installed."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in (INPUTS_MARKER, MARKER):
        with contextlib.suppress(FileNotFoundError):
            (directory / name).unlink()
    for child in directory.iterdir():
        if child.is_dir() and not child.is_symlink():
            import shutil

            shutil.rmtree(child)
        else:
            child.unlink()


def link_tree(src: Path, dst: Path) -> None:
    """Recreate `src` in `dst` with hard links (a copy across file systems), the marker
    last, so a restore cut short never looks complete."""
    can_link = True

    def place(source: str, target: str) -> None:
        nonlocal can_link
        if can_link:
            try:
                os.link(source, target, follow_symlinks=False)
                return
            except OSError:
                can_link = False  # another file system (e.g. a shared cache volume)
        import shutil

        shutil.copy2(source, target)

    def walk(source: str, target: str, top: bool) -> None:
        # scandir's entry types come with the listing: no stat per file on a warm start.
        with os.scandir(source) as entries:
            for entry in entries:
                out = os.path.join(target, entry.name)
                if entry.is_symlink():
                    os.symlink(os.readlink(entry.path), out)
                elif entry.is_dir():
                    os.mkdir(out)
                    walk(entry.path, out, top=False)
                elif not (top and entry.name == MARKER):
                    place(entry.path, out)

    walk(str(src), str(dst), top=True)
    if (src / MARKER).exists():
        place(str(src / MARKER), str(dst / MARKER))


class TamperedTree(Exception):
    """A restored tree does not match the file digests recorded when it was published."""


def _entries(root: str) -> dict[str, str]:
    """Every file and link under `root` (bookkeeping files aside) by relative path: the
    SHA-256 of a file, "->" + the target of a link."""
    import hashlib

    found: dict[str, str] = {}

    def walk(folder: str, prefix: str) -> None:
        with os.scandir(folder) as entries:
            for entry in entries:
                rel = prefix + entry.name
                if entry.is_symlink():
                    found[rel] = "->" + os.readlink(entry.path)
                elif entry.is_dir():
                    walk(entry.path, rel + "/")
                elif not (not prefix and entry.name in _UNHASHED):
                    with open(entry.path, "rb") as fh:
                        found[rel] = hashlib.file_digest(fh, "sha256").hexdigest()

    walk(root, "")
    return found


def write_digests(tree: Path) -> None:
    """Record what `tree` holds, at publish."""
    import json

    (tree / FILES).write_text(json.dumps(_entries(str(tree)), sort_keys=True, indent=0))


def verify_digests(recorded: Path, restored: Path) -> None:
    """Raise TamperedTree unless `restored` holds exactly the files `recorded` lists."""
    import json

    text = read_text(recorded)
    try:
        expected = json.loads(text) if text is not None else None
    except ValueError:
        expected = None
    if not isinstance(expected, dict):
        raise TamperedTree(f"{recorded.name} is missing or unreadable")
    found = _entries(str(restored))
    if found == expected:
        return
    changed = sorted(p for p in expected.keys() & found.keys() if expected[p] != found[p])
    problems = [f"changed: {', '.join(changed[:5])}"] if changed else []
    if missing := sorted(expected.keys() - found.keys()):
        problems.append(f"missing: {', '.join(missing[:5])}")
    if extra := sorted(found.keys() - expected.keys()):
        problems.append(f"not in the digests: {', '.join(extra[:5])}")
    raise TamperedTree("; ".join(problems))


def listed(target: Path) -> list[str]:
    """The distributions in a packages tree, as name-version."""
    with os.scandir(target) as entries:
        return sorted(
            e.name.removesuffix(".dist-info")
            for e in entries
            if e.name.endswith(".dist-info") and e.is_dir()
        )


class TreeCache:
    def __init__(self, root: Path) -> None:
        self.root = root

    def tree(self, key: str) -> Path:
        return self.root / "trees" / key

    def resolved(self, key: str) -> Path:
        return self.root / "resolved" / f"{key}.txt"

    def has_tree(self, key: str) -> bool:
        return (self.tree(key) / MARKER).is_file()

    def restore(self, key: str, target: Path) -> None:
        """Restore the tree for `key` into `target` and check every file of the result
        against the digests written at publish. On TamperedTree `target` is left empty and
        the cached tree is moved aside (where the cache is writable) so the next install
        publishes a good one."""
        clear(target)
        tree = self.tree(key)
        link_tree(tree, target)
        try:
            verify_digests(tree / FILES, target)
        except TamperedTree:
            clear(target)
            import uuid

            with contextlib.suppress(OSError):  # read-only here: the writer replaces it
                os.rename(tree, tree.with_name(f".{key}.rejected-{uuid.uuid4().hex[:8]}.partial"))
            raise

    def publish(self, source: Path, key: str) -> None:
        """Store a copy of `source` as the tree for `key` unless one is there already."""
        tree = self.tree(key)
        if tree.exists():
            return
        import shutil
        import tempfile

        tree.parent.mkdir(parents=True, exist_ok=True)
        self._drop_stale_staging()
        staging = Path(tempfile.mkdtemp(dir=tree.parent, prefix=f".{key}.", suffix=".partial"))
        try:
            staging.chmod(0o755)  # mkdtemp's 0700 would hide it from other users of the cache
            shutil.copytree(source, staging, symlinks=True, dirs_exist_ok=True)
            (staging / INPUTS_MARKER).unlink(missing_ok=True)  # belongs to one pod only
            write_digests(staging)  # of the copy: what later starts will restore
            os.rename(staging, tree)  # atomic: pods sharing the cache never see half a tree
        except OSError:
            if not self.has_tree(key):
                raise
            # Another start stored the same tree first; its copy serves everyone.
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _drop_stale_staging(self) -> None:
        """Staging trees of starts killed while publishing; one older than an hour is no
        longer being written (a copy takes seconds), so it only holds space."""
        import shutil
        import time

        cutoff = time.time() - STALE_STAGING_SECONDS
        for leftover in self.root.joinpath("trees").glob(".*.partial"):
            with contextlib.suppress(OSError):
                if leftover.stat().st_mtime < cutoff:
                    shutil.rmtree(leftover, ignore_errors=True)

    def inputs_entry(self, inputs: str) -> InputsEntry | None:
        text = read_text(self.root / "inputs" / inputs)
        return InputsEntry.parse(text) if text is not None else None

    def record_inputs(self, inputs: str, entry: InputsEntry) -> None:
        write_atomic(self.root / "inputs" / inputs, entry.render())
