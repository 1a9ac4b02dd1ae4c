"""The full requirements install, for a start whose inputs no earlier start has seen.

Resolve with the constraints (`uv pip compile`), drop what the image already has, install
the rest with `uv pip install --target --no-deps --compile-bytecode`, then keep both the
resolution and the installed tree in the cache directory, keyed by
sha256(requirements + constraints + Python + platform + bundle). Bytecode is compiled at
install time because images commonly run with PYTHONDONTWRITEBYTECODE=1: without it every
start would compile every module it imports again.

Before resolving, the cheaper outcomes are tried: the packages directory already holds
this key; the cache holds the installed tree -> hard-link it (the default); the cache
holds the resolution -> install it offline from uv's wheel cache. requirements_step
runs first and skips all of this when the raw inputs were seen before.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from airflow_platform.bootstrap.check import check_requirements
from airflow_platform.bootstrap.constraints import (
    Constraints,
    essential_versions,
    installed_distributions,
)
from airflow_platform.bootstrap.inputs_key import CACHE_FORMAT, find_bundle
from airflow_platform.bootstrap.requirements_file import RequirementsFile, parse_requirements
from airflow_platform.bootstrap.result import InstallResult, RequirementsError
from airflow_platform.bootstrap.settings import BootstrapSettings
from airflow_platform.bootstrap.tree_cache import (
    MARKER,
    TamperedTree,
    TreeCache,
    clear,
    listed,
    write_atomic,
)


def uv_binary() -> str:
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if not found:
            raise RequirementsError(
                "uv is not installed; the platform image ships it with airflow-platform"
            ) from None
        return found


def cache_key(requirements_text: str, constraints_text: str, bundle: Path | None = None) -> str:
    digest = hashlib.sha256()
    for part in (
        CACHE_FORMAT,
        requirements_text,
        constraints_text,
        sys.version,
        sys.executable,  # installed scripts' shebangs name it
        sys.implementation.cache_tag or "",
        sysconfig.get_platform(),
        "\n".join(sorted(p.name for p in bundle.glob("*.whl"))) if bundle else "",
    ):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def uv_environment(
    base: Mapping[str, str], cache_dir: Path, writable: bool = True
) -> dict[str, str]:
    env = dict(base)
    # uv writes to its cache even to read it: a read-only shared cache gets a private one.
    private = Path(base.get("HOME") or tempfile.gettempdir()) / ".cache" / "airflow-platform-uv"
    env["UV_CACHE_DIR"] = str(cache_dir / "uv" if writable else private)
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env["UV_NO_PROGRESS"] = "1"
    # MWAA users point pip at private repositories from startup.sh; uv reads its own names.
    for pip_name, uv_name in (
        ("PIP_INDEX_URL", "UV_INDEX_URL"),
        ("PIP_EXTRA_INDEX_URL", "UV_EXTRA_INDEX_URL"),
    ):
        if pip_name in env and uv_name not in env:
            env[uv_name] = env[pip_name]
    return env


def _run_uv(args: list[str], env: Mapping[str, str], what: str) -> str:
    proc = subprocess.run(
        [uv_binary(), *args], env=dict(env), capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        detail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-25:])
        raise RequirementsError(f"{what} failed (uv exit code {proc.returncode}):\n{detail}")
    return proc.stdout


def uv_compile(
    text: str, constraints: Constraints, env: Mapping[str, str]
) -> tuple[list[str] | None, str]:
    """`uv pip compile` of requirements `text` with the constraints, for this interpreter:
    (the pinned lines, "") or (None, uv's error)."""
    with tempfile.TemporaryDirectory(prefix="requirements-") as tmp:
        src = Path(tmp) / "requirements.in"
        src.write_text(text)
        cons = Path(tmp) / "constraints.txt"
        cons.write_text(constraints.text)
        out = Path(tmp) / "resolved.txt"
        args = ["pip", "compile", str(src), "--constraints", str(cons)]
        args += ["--python", sys.executable, "--no-header", "--no-annotate", "--quiet"]
        proc = subprocess.run(
            [uv_binary(), *args, "--output-file", str(out)],
            env=dict(env),
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            return None, (proc.stderr or proc.stdout).strip()
        return out.read_text().splitlines(), ""


def _with_hashes(resolved: list[str], parsed: RequirementsFile) -> list[str]:
    """The resolution with requirements.txt's hashes on every line: in hash-checking mode a
    package the file does not list with its hashes (a dependency left out) is refused."""
    out: list[str] = []
    for line in resolved:
        try:
            name = canonicalize_name(Requirement(line).name)
        except InvalidRequirement:
            name = line
        hashes = parsed.hashes_of(name)
        if not hashes:
            raise RequirementsError(
                f"requirements.txt checks hashes, but installing it also needs {line}, which "
                "it does not list with a --hash: add that line with its hashes "
                "(`pip-compile --generate-hashes` lists every dependency)"
            )
        out.append(" ".join([line, *(f"--hash={h}" for h in hashes)]))
    return out


class Installer:
    """One requirements install for one component start."""

    def __init__(
        self,
        settings: BootstrapSettings,
        environment: Mapping[str, str] | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.environment = dict(os.environ if environment is None else environment)
        self.log = log or (lambda message: print(f"[bootstrap] {message}", file=sys.stderr))
        self._requirements_bytes = b""  # what install() checks (a bundle must match it)

    # -- inputs -----------------------------------------------------------------------
    def _constraints(self, installed: dict[str, str]) -> Constraints:
        if self.settings.constraints is not None:
            try:
                return Constraints.from_file(self.settings.constraints)
            except FileNotFoundError as exc:
                raise RequirementsError(str(exc)) from None
        return Constraints.from_installed(installed)

    def prepare(
        self, requirements: Path, data: bytes | None = None
    ) -> tuple[RequirementsFile, Constraints, dict[str, str], list[str]]:
        installed = installed_distributions(exclude=(self.settings.packages_dir,))
        constraints = self._constraints(installed)
        essentials = essential_versions(installed)
        raw = requirements.read_bytes() if data is None else data
        parsed = parse_requirements(raw.decode(errors="replace"), self.settings.layout)
        report = check_requirements(parsed, constraints, essentials)
        notes = [f"{requirements.name} {warning}" for warning in report.warnings]
        for note in notes:
            self.log(note)
        if not report.ok:
            lines = "\n".join(f"  - {error}" for error in report.errors)
            raise RequirementsError(f"{requirements} cannot be installed:\n{lines}")
        parsed.requirements = [r for r in parsed.requirements if r.name not in report.provided]
        return parsed, constraints, installed, notes

    # -- the install ------------------------------------------------------------------
    def install(self, requirements: Path, data: bytes | None = None) -> InstallResult:
        """Check, resolve and install `requirements` (its content `data` when given)."""
        if not requirements.is_file() and data is None:
            return InstallResult("none")
        self._requirements_bytes = requirements.read_bytes() if data is None else data
        parsed, constraints, installed, notes = self.prepare(requirements, self._requirements_bytes)
        if not parsed.requirements:
            notes.append(f"{requirements} lists nothing to install")
            self.log(notes[-1])
            return InstallResult("none", notes=notes)
        bundle = find_bundle(self.settings.layout)
        text = parsed.installer_text()
        key = cache_key(text, constraints.text, bundle)
        result = self._install_keyed(parsed, text, constraints, installed, key, bundle)
        result.notes = notes
        result.offline_bundle = bundle
        return result

    def _install_keyed(
        self,
        parsed: RequirementsFile,
        text: str,
        constraints: Constraints,
        installed: dict[str, str],
        key: str,
        bundle: Path | None,
    ) -> InstallResult:
        target = self.settings.packages_dir
        try:
            if (target / MARKER).read_text().strip() == key:
                return InstallResult("unchanged", key, listed(target))
        except OSError:
            pass
        mode = self.settings.cache_mode
        cache = TreeCache(self.settings.cache_dir)
        if mode == "tree" and cache.has_tree(key):
            self.log(f"restoring installed packages from the cache ({cache.tree(key)})")
            try:
                cache.restore(key, target)
                return InstallResult("tree-cache", key, listed(target))
            except TamperedTree as exc:
                self.log(f"refusing the cached tree {cache.tree(key)}: {exc}; installing afresh")
        writable = self.settings.cache_writable()
        if not writable and mode != "off":
            self.log(f"the cache {self.settings.cache_dir} is read-only here: used, not written")
        uv_env = uv_environment(self.environment, self.settings.cache_dir, writable)
        resolved_file = cache.resolved(key)
        if mode != "off" and resolved_file.is_file():
            self.log("installing the cached resolution offline from the wheel cache")
            try:
                self._uv_install(resolved_file.read_text(), uv_env, bundle, offline=True)
            except RequirementsError as exc:
                self.log(f"offline install from the cache failed, installing afresh: {exc}")
            else:
                self._finish(target, key, cache if mode == "tree" and writable else None)
                return InstallResult("wheel-cache", key, listed(target))
        if bundle:
            resolved = self._bundle_resolution(bundle, installed)
        else:
            self.log(
                f"resolving {len(parsed.requirements)} requirement(s) with {constraints.source}"
            )
            resolved = self._resolve(
                parsed.installer_text(hashes=False), constraints, installed, uv_env
            )
        if parsed.checks_hashes:
            resolved = _with_hashes(resolved, parsed)
        self.log(f"installing {len(resolved)} package(s) into {target}")
        install_text = "\n".join([*parsed.options, *resolved]) + "\n"
        self._uv_install(install_text, uv_env, bundle, offline=False)
        if mode != "off" and writable:
            try:
                write_atomic(resolved_file, install_text)
            except OSError as exc:
                self.log(f"could not store the resolution in the cache: {exc}")
        self._finish(target, key, cache if mode == "tree" and writable else None)
        return InstallResult("installed", key, listed(target))

    def _resolve(
        self,
        text: str,
        constraints: Constraints,
        installed: dict[str, str],
        uv_env: Mapping[str, str],
    ) -> list[str]:
        lines, error = uv_compile(text, constraints, uv_env)
        if lines is None:
            detail = "\n".join(error.splitlines()[-25:])
            raise RequirementsError(f"resolving requirements.txt failed (uv):\n{detail}")
        return self._not_installed(lines, installed, essential_versions(installed))

    def _bundle_resolution(self, bundle: Path, installed: dict[str, str]) -> list[str]:
        """A bundle was resolved when it was built (with the image's packages visible, which
        an offline resolver cannot see): install its lock, if it matches requirements.txt."""
        try:
            manifest = json.loads((bundle / "bundle.json").read_text())
            lock = (bundle / "requirements.lock.txt").read_text().splitlines()
        except (OSError, ValueError) as exc:
            raise RequirementsError(
                f"the wheel bundle in {bundle} is incomplete ({exc}); rebuild it with "
                "`airflow-platform requirements package`"
            ) from None
        digest = hashlib.sha256(self._requirements_bytes).hexdigest()
        if manifest.get("requirements_sha256") != digest:
            raise RequirementsError(
                f"the wheel bundle in {bundle} was built for another requirements.txt; rebuild "
                "it with `airflow-platform requirements package` and upload it in plugins.zip"
            )
        self.log(f"installing from the wheel bundle in {bundle} (no package index)")
        return self._not_installed(lock, installed, essential_versions(installed))

    @staticmethod
    def _not_installed(
        lines: list[str], installed: dict[str, str], essentials: dict[str, str]
    ) -> list[str]:
        keep: list[str] = []
        for line in lines:
            line = line.strip()
            if not line or line.startswith(("#", "-")):
                continue
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                keep.append(line)
                continue
            name = canonicalize_name(requirement.name)
            pinned = next((s.version for s in requirement.specifier if s.operator == "=="), None)
            if name in installed and pinned == installed[name] and not requirement.url:
                continue  # the image already has exactly this
            if name in essentials:
                raise RequirementsError(
                    f"resolving requirements.txt needs {line}, but the platform runs "
                    f"{requirement.name} {essentials[name]} (an essential package); a "
                    "requirement needs a different version: find it with "
                    f"`airflow-platform requirements test` and pin a compatible release"
                )
            keep.append(line)
        return keep

    def _uv_install(
        self, text: str, uv_env: Mapping[str, str], bundle: Path | None, offline: bool
    ) -> None:
        target = self.settings.packages_dir
        clear(target)
        with tempfile.TemporaryDirectory(prefix="requirements-") as tmp:
            req = Path(tmp) / "install.txt"
            req.write_text(text)
            args = [
                "pip",
                "install",
                "--target",
                str(target),
                "--no-deps",
                "--python",
                sys.executable,
                "--compile-bytecode",  # see the module docstring
                "--quiet",
                "-r",
                str(req),
            ]
            if "--hash=" in text:  # pip's hash-checking mode: every wheel must match
                args.append("--require-hashes")
            if offline:
                args.append("--offline")
            if bundle:
                args += ["--no-index", "--find-links", str(bundle)]
            try:
                _run_uv(args, uv_env, "installing requirements.txt")
            except RequirementsError as exc:
                clear(target)  # never leave a half-installed tree on the path
                if "Hash mismatch" in str(exc):
                    raise RequirementsError(
                        f"{exc}\nA wheel does not match the --hash requirements.txt gives for "
                        "it: check the hash (`pip hash <wheel>`) or the package index"
                    ) from None
                raise

    def _finish(self, target: Path, key: str, cache: TreeCache | None) -> None:
        (target / MARKER).write_text(key + "\n")
        if cache is None:
            return
        try:
            cache.publish(target, key)
        except OSError as exc:  # the install stands; only later starts lose the shortcut
            self.log(f"could not store the installed tree in the cache: {exc}")
