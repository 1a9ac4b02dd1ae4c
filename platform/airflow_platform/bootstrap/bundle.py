"""`requirements package`: a zip of wheels for environments without a package index.

MWAA's trick for private networks is to ship wheels inside plugins.zip and install with
--no-index --find-links. The bundle holds `wheels/*.whl` (only what the image does not
already have) plus `wheels/bundle.json`; put its content in plugins.zip and every
component installs offline from it. Wheels are chosen for the interpreter this runs on,
so build the bundle in the platform image (same Python, same platform).
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
import tomllib
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from packaging.tags import sys_tags
from packaging.utils import canonicalize_name, parse_wheel_filename

from airflow_platform.bootstrap.check import check_requirements
from airflow_platform.bootstrap.constraints import (
    Constraints,
    essential_versions,
    installed_distributions,
)
from airflow_platform.bootstrap.inputs_key import BUNDLE_DIR
from airflow_platform.bootstrap.install import uv_binary, uv_environment
from airflow_platform.bootstrap.requirements_file import read_requirements
from airflow_platform.bootstrap.result import RequirementsError
from airflow_platform.paths import SyncLayout


@dataclass
class BundleResult:
    output: Path
    wheels: list[str]
    skipped: list[str]  # already in the image


def _download(url: str, dest: Path, sha256: str | None) -> None:
    with urllib.request.urlopen(url, timeout=120) as response, dest.open("wb") as out:
        shutil.copyfileobj(response, out)
    if sha256:
        actual = hashlib.sha256(dest.read_bytes()).hexdigest()
        if actual != sha256:
            dest.unlink()
            raise RequirementsError(f"{url}: sha256 {actual} does not match the index {sha256}")


def _best_wheel(wheels: list[dict]) -> dict | None:
    priority = {tag: index for index, tag in enumerate(sys_tags())}
    best: tuple[int, dict] | None = None
    for wheel in wheels:
        filename = wheel.get("name") or Path(urllib.parse.urlparse(wheel["url"]).path).name
        _, _, _, tags = parse_wheel_filename(filename)
        rank = min((priority[tag] for tag in tags if tag in priority), default=None)
        if rank is not None and (best is None or rank < best[0]):
            best = (rank, wheel | {"name": filename})
    return best[1] if best else None


def build_bundle(
    requirements: Path,
    output: Path,
    constraints_file: Path | None = None,
    cache_dir: Path | None = None,
    log: Callable[[str], None] = print,
) -> BundleResult:
    installed = installed_distributions()
    constraints = (
        Constraints.from_file(constraints_file)
        if constraints_file
        else Constraints.from_installed(installed)
    )
    essentials = essential_versions(installed)
    parsed = read_requirements(requirements, SyncLayout.from_env())
    report = check_requirements(parsed, constraints, essentials)
    if not report.ok:
        lines = "\n".join(f"  - {error}" for error in report.errors)
        raise RequirementsError(f"{requirements} cannot be packaged:\n{lines}")
    parsed.requirements = [r for r in parsed.requirements if r.name not in report.provided]
    env = uv_environment(
        os.environ,
        cache_dir or Path(tempfile.gettempdir()) / "airflow-platform-uv",
    )
    with tempfile.TemporaryDirectory(prefix="bundle-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "requirements.in").write_text(parsed.installer_text(hashes=False))
        (tmp / "constraints.txt").write_text(constraints.text)
        log(f"resolving {len(parsed.requirements)} requirement(s) with {constraints.source}")
        proc = subprocess.run(
            [uv_binary(), "pip", "compile", str(tmp / "requirements.in"),
             "--constraints", str(tmp / "constraints.txt"), "--python", sys.executable,
             "--format", "pylock.toml", "--quiet", "--output-file", str(tmp / "pylock.toml")],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            raise RequirementsError(f"resolving {requirements} failed:\n{proc.stderr.strip()}")
        lock = tomllib.loads((tmp / "pylock.toml").read_text())
        wheel_dir = tmp / BUNDLE_DIR
        wheel_dir.mkdir()
        wheels: list[str] = []
        skipped: list[str] = []
        pins: list[str] = []
        for package in lock.get("packages", []):
            name, version = canonicalize_name(package["name"]), package.get("version", "")
            if installed.get(name) == version:
                skipped.append(f"{name}=={version}")
                continue
            if name in essentials:
                raise RequirementsError(
                    f"the resolution needs {name}=={version} but the platform runs "
                    f"{essentials[name]}; pin a release compatible with it"
                )
            pins.append(f"{name}=={version}")
            wheel = _best_wheel(package.get("wheels", []))
            if wheel:
                log(f"  downloading {wheel['name']}")
                _download(
                    wheel["url"], wheel_dir / wheel["name"], wheel.get("hashes", {}).get("sha256")
                )
                wheels.append(wheel["name"])
                continue
            sdist = package.get("sdist")
            if not sdist:
                raise RequirementsError(f"{name}=={version} has no wheel or sdist for this Python")
            archive = tmp / Path(urllib.parse.urlparse(sdist["url"]).path).name
            log(f"  building a wheel from {archive.name}")
            _download(sdist["url"], archive, sdist.get("hashes", {}).get("sha256"))
            before = set(wheel_dir.glob("*.whl"))
            build = subprocess.run(
                [uv_binary(), "build", "--wheel", "--out-dir", str(wheel_dir),
                 "--python", sys.executable, str(archive)],
                env=env, capture_output=True, text=True, check=False,
            )  # fmt: skip
            if build.returncode != 0:
                raise RequirementsError(f"building {archive.name} failed:\n{build.stderr.strip()}")
            wheels += sorted(p.name for p in set(wheel_dir.glob("*.whl")) - before)
        (wheel_dir / "requirements.lock.txt").write_text("\n".join(pins) + "\n")
        manifest = {
            "python": sys.version.split()[0],
            "platform": sysconfig.get_platform(),
            "requirements_sha256": hashlib.sha256(requirements.read_bytes()).hexdigest(),
            "wheels": sorted(wheels),
        }
        (wheel_dir / "bundle.json").write_text(json.dumps(manifest, indent=2) + "\n")
        output.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as archive_zip:
            for path in sorted(wheel_dir.iterdir()):
                archive_zip.write(path, f"{BUNDLE_DIR}/{path.name}")
    return BundleResult(output, sorted(wheels), skipped)
