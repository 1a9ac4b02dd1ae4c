"""Installing requirements.txt into the packages directory, fast after the first start.

Cold start: resolve with the constraints (`uv pip compile`), drop what the image already
has, install the rest with `uv pip install --target --no-deps`, then keep both the
resolution and the installed tree in the cache directory, keyed by
sha256(requirements + constraints + Python + platform + bundle).

Warm start, fastest first: the packages directory already holds this key (container
restart) -> nothing to do; the cache holds the installed tree -> copy it (the default);
the cache holds the resolution -> install it offline from uv's wheel cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from airflow_platform.bootstrap.check import check_requirements
from airflow_platform.bootstrap.constraints import (
    Constraints,
    essential_versions,
    installed_distributions,
)
from airflow_platform.bootstrap.requirements_file import RequirementsFile, read_requirements
from airflow_platform.bootstrap.settings import BootstrapSettings
from airflow_platform.paths import SyncLayout

CACHE_FORMAT = "1"  # bump when the cache layout changes
MARKER = ".airflow-platform-requirements"
BUNDLE_DIR = "wheels"  # inside the plugins folder: a bundle from `requirements package`


class RequirementsError(RuntimeError):
    pass


@dataclass
class InstallResult:
    status: str  # none | unchanged | tree-cache | wheel-cache | installed
    key: str = ""
    packages: list[str] = field(default_factory=list)
    seconds: float = 0.0
    offline_bundle: Path | None = None

    @property
    def installed(self) -> bool:
        return self.status != "none"


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


def find_bundle(layout: SyncLayout) -> Path | None:
    """A wheel bundle unpacked into the plugins folder (private networks)."""
    candidate = layout.plugins / BUNDLE_DIR
    if candidate.is_dir() and any(candidate.glob("*.whl")):
        return candidate
    return None


def cache_key(requirements_text: str, constraints_text: str, bundle: Path | None = None) -> str:
    digest = hashlib.sha256()
    for part in (
        CACHE_FORMAT,
        requirements_text,
        constraints_text,
        sys.version,
        sys.implementation.cache_tag or "",
        sysconfig.get_platform(),
        "\n".join(sorted(p.name for p in bundle.glob("*.whl"))) if bundle else "",
    ):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def uv_environment(base: Mapping[str, str], cache_dir: Path) -> dict[str, str]:
    env = dict(base)
    env["UV_CACHE_DIR"] = str(cache_dir / "uv")
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


def _clear(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for child in directory.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _run_uv(args: list[str], env: Mapping[str, str], what: str) -> str:
    proc = subprocess.run(
        [uv_binary(), *args], env=dict(env), capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        detail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-25:])
        raise RequirementsError(f"{what} failed (uv exit code {proc.returncode}):\n{detail}")
    return proc.stdout


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

    # -- inputs -----------------------------------------------------------------------
    def _constraints(self, installed: dict[str, str]) -> Constraints:
        if self.settings.constraints is not None:
            try:
                return Constraints.from_file(self.settings.constraints)
            except FileNotFoundError as exc:
                raise RequirementsError(str(exc)) from None
        return Constraints.from_installed(installed)

    def prepare(self, requirements: Path) -> tuple[RequirementsFile, Constraints, dict[str, str]]:
        installed = installed_distributions(exclude=(self.settings.packages_dir,))
        constraints = self._constraints(installed)
        essentials = essential_versions(installed)
        parsed = read_requirements(requirements, self.settings.layout)
        report = check_requirements(parsed, constraints, essentials)
        for warning in report.warnings:
            self.log(f"{requirements.name} {warning}")
        if not report.ok:
            lines = "\n".join(f"  - {error}" for error in report.errors)
            raise RequirementsError(f"{requirements} cannot be installed:\n{lines}")
        parsed.requirements = [r for r in parsed.requirements if r.name not in report.provided]
        return parsed, constraints, installed

    # -- the install ------------------------------------------------------------------
    def install(self, requirements: Path) -> InstallResult:
        started = time.monotonic()
        if not requirements.is_file():
            return InstallResult("none")
        parsed, constraints, installed = self.prepare(requirements)
        if not parsed.requirements:
            self.log(f"{requirements} lists nothing to install")
            return InstallResult("none")
        bundle = find_bundle(self.settings.layout)
        text = parsed.installer_text()
        key = cache_key(text, constraints.text, bundle)
        result = self._install_keyed(parsed, text, constraints, installed, key, bundle)
        result.seconds = time.monotonic() - started
        result.offline_bundle = bundle
        self.log(
            f"requirements: {result.status} ({len(result.packages)} package(s) in "
            f"{self.settings.packages_dir}, {result.seconds:.2f} s, key {key[:12]})"
        )
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
        marker = target / MARKER
        with contextlib.suppress(OSError):
            if marker.read_text().strip() == key:
                return InstallResult("unchanged", key, self._listed(target))
        mode = self.settings.cache_mode
        cache = self.settings.cache_dir
        tree = cache / "trees" / key
        resolved_file = cache / "resolved" / f"{key}.txt"
        if mode == "tree" and (tree / MARKER).is_file():
            self.log(f"restoring installed packages from the cache ({tree})")
            _clear(target)
            shutil.copytree(
                tree, target, symlinks=True, dirs_exist_ok=True, copy_function=_link_or_copy
            )
            return InstallResult("tree-cache", key, self._listed(target))
        uv_env = uv_environment(self.environment, cache)
        if mode != "off" and resolved_file.is_file():
            self.log("installing the cached resolution offline from the wheel cache")
            try:
                self._uv_install(resolved_file.read_text(), uv_env, bundle, offline=True)
            except RequirementsError as exc:
                self.log(f"offline install from the cache failed, installing afresh: {exc}")
            else:
                self._finish(target, key, tree if mode == "tree" else None)
                return InstallResult("wheel-cache", key, self._listed(target))
        if bundle:
            resolved = self._bundle_resolution(bundle, installed)
        else:
            self.log(
                f"resolving {len(parsed.requirements)} requirement(s) with {constraints.source}"
            )
            resolved = self._resolve(text, constraints, installed, uv_env)
        self.log(f"installing {len(resolved)} package(s) into {target}")
        install_text = "\n".join([*parsed.options, *resolved]) + "\n"
        self._uv_install(install_text, uv_env, bundle, offline=False)
        if mode != "off":
            resolved_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = resolved_file.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(install_text)
            os.replace(tmp, resolved_file)
        self._finish(target, key, tree if mode == "tree" else None)
        return InstallResult("installed", key, self._listed(target))

    def _resolve(
        self,
        text: str,
        constraints: Constraints,
        installed: dict[str, str],
        uv_env: Mapping[str, str],
    ) -> list[str]:
        essentials = essential_versions(installed)
        with tempfile.TemporaryDirectory(prefix="requirements-") as tmp:
            src = Path(tmp) / "requirements.in"
            src.write_text(text)
            cons = Path(tmp) / "constraints.txt"
            cons.write_text(constraints.text)
            out = Path(tmp) / "resolved.txt"
            args = [
                "pip",
                "compile",
                str(src),
                "--constraints",
                str(cons),
                "--python",
                sys.executable,
                "--no-header",
                "--no-annotate",
                "--quiet",
                "--output-file",
                str(out),
            ]
            _run_uv(args, uv_env, "resolving requirements.txt")
            lines = out.read_text().splitlines()
        return self._not_installed(lines, installed, essentials)

    def _bundle_resolution(self, bundle: Path, installed: dict[str, str]) -> list[str]:
        """A bundle was resolved when it was built (with the image's packages visible, which
        an offline resolver cannot see): install its lock, if it matches requirements.txt."""
        requirements = self.settings.layout.requirements
        try:
            manifest = json.loads((bundle / "bundle.json").read_text())
            lock = (bundle / "requirements.lock.txt").read_text().splitlines()
        except (OSError, ValueError) as exc:
            raise RequirementsError(
                f"the wheel bundle in {bundle} is incomplete ({exc}); rebuild it with "
                "`airflow-platform requirements package`"
            ) from None
        digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
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
        _clear(target)
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
                "--quiet",
                "-r",
                str(req),
            ]
            if offline:
                args.append("--offline")
            if bundle:
                args += ["--no-index", "--find-links", str(bundle)]
            try:
                _run_uv(args, uv_env, "installing requirements.txt")
            except RequirementsError:
                _clear(target)  # never leave a half-installed tree on the path
                raise

    def _finish(self, target: Path, key: str, tree: Path | None) -> None:
        (target / MARKER).write_text(key + "\n")
        if tree is None or tree.exists():
            return
        tree.parent.mkdir(parents=True, exist_ok=True)
        staging = tree.parent / f".{key}.{os.getpid()}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(target, staging, symlinks=True)
        try:
            os.rename(staging, tree)  # atomic: pods sharing the cache never see half a tree
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # another start stored it first

    @staticmethod
    def _listed(target: Path) -> list[str]:
        return sorted(
            p.name.removesuffix(".dist-info") for p in target.glob("*.dist-info") if p.is_dir()
        )
