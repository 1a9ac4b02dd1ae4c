"""requirements.txt at every component start: the warm paths first, the installer on a miss.

The raw inputs (requirements.txt, constraints, installed distributions, Python, bundle:
see inputs_key) decide everything the checks and the resolution do, so what a start
with the same inputs ended with can be reused as is, checks included:

  restart     the packages dir already holds the install for these inputs
  tree-cache  the cache maps these inputs to an installed tree: hard-link it in

Both import only the standard library, and not even all of it: the modules a start loads
keep their records as plain classes, because importing dataclasses costs ~7 ms and typing
~5 ms, against ~30 ms for this whole entrypoint on a warm start.

Anything else (new inputs, cache mode wheels/off, a tree gone from the cache) imports
the installer, which checks, resolves and installs, then records the outcome for the
next start. Failures are never recorded: a broken start is checked again next time.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from airflow_platform.bootstrap.inputs_key import find_bundle, inputs_key
from airflow_platform.bootstrap.result import InstallResult
from airflow_platform.bootstrap.settings import BootstrapSettings
from airflow_platform.bootstrap.tree_cache import (
    INPUTS_MARKER,
    MARKER,
    InputsEntry,
    TamperedTree,
    TreeCache,
    listed,
    read_text,
    write_atomic,
)


def _warm(
    settings: BootstrapSettings, inputs: str, log: Callable[[str], None]
) -> InstallResult | None:
    target = settings.packages_dir
    held = read_text(target / INPUTS_MARKER)
    if held is not None:
        first, _, rest = held.partition("\n")
        entry = InputsEntry.parse(rest) if first == inputs else None
        tree_key = (read_text(target / MARKER) or "").strip()
        if entry is not None and entry.key and entry.key == tree_key:
            return InstallResult(
                "unchanged", entry.key, listed(target), notes=list(entry.notes), checked=False
            )
    if settings.cache_mode != "tree":
        return None
    cache = TreeCache(settings.cache_dir)
    entry = cache.inputs_entry(inputs)
    if entry is None:
        return None
    if not entry.key:
        return InstallResult("none", notes=list(entry.notes), checked=False)
    if not cache.has_tree(entry.key):
        return None  # the tree was removed from the cache: install again
    log(f"restoring installed packages from the cache ({cache.tree(entry.key)})")
    try:
        cache.restore(entry.key, target)
    except TamperedTree as exc:
        log(f"refusing the cached tree {cache.tree(entry.key)}: {exc}; installing afresh")
        return None
    _mark(target, inputs, entry)
    return InstallResult(
        "tree-cache", entry.key, listed(target), notes=list(entry.notes), checked=False
    )


def _mark(target: Path, inputs: str, entry: InputsEntry) -> None:
    write_atomic(target / INPUTS_MARKER, f"{inputs}\n{entry.render()}", shared=False)


def _remember(
    settings: BootstrapSettings, inputs: str, result: InstallResult, log: Callable[[str], None]
) -> None:
    entry = InputsEntry(result.key if result.installed else "", tuple(result.notes))
    if result.installed:
        _mark(settings.packages_dir, inputs, entry)
    if settings.cache_mode == "off" or not settings.cache_writable():
        return
    try:
        TreeCache(settings.cache_dir).record_inputs(inputs, entry)
    except OSError as exc:  # the install stands; only the next start's shortcut is lost
        log(f"could not record this start in the cache {settings.cache_dir}: {exc}")


def install_requirements(
    settings: BootstrapSettings,
    environment: Mapping[str, str] | None = None,
    log: Callable[[str], None] | None = None,
) -> InstallResult:
    """Install the sync root's requirements.txt into the packages dir (RequirementsError
    says why it cannot)."""
    log = log or (lambda message: print(f"[bootstrap] {message}", file=sys.stderr, flush=True))
    started = time.monotonic()
    path = settings.layout.requirements
    if not path.is_file():
        return InstallResult("none")
    data = path.read_bytes()  # read once: the key and the checks see the same bytes
    inputs = inputs_key(settings, data)
    result = _warm(settings, inputs, log)
    if result is None:
        from airflow_platform.bootstrap.install import Installer

        installer = Installer(settings, os.environ if environment is None else environment, log)
        result = installer.install(path, data)
        _remember(settings, inputs, result, log)
    else:
        for note in result.notes:
            log(note)
    result.seconds = time.monotonic() - started
    result.offline_bundle = find_bundle(settings.layout)
    if result.installed:
        log(
            f"requirements: {result.status} ({len(result.packages)} package(s) in "
            f"{settings.packages_dir}, {result.seconds:.2f} s, key {result.key[:12]}"
            + ("" if result.checked else "; inputs as on an earlier start, checks reused")
            + ")"
        )
    return result
