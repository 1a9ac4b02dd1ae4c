"""A sync root, packages dir and cache laid out like a pod's volumes, in a temp dir."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from airflow_platform.paths import SyncLayout


@dataclass
class PodDirs:
    root: Path

    @property
    def layout(self) -> SyncLayout:
        return SyncLayout(self.root / "sync")

    @property
    def packages(self) -> Path:
        return self.root / "packages"

    @property
    def cache(self) -> Path:
        return self.root / "wheel-cache"

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW_PLATFORM_", "MWAA_", "UV_"))
        }
        env |= {
            "AIRFLOW_PLATFORM_SYNC_ROOT": str(self.layout.root),
            "AIRFLOW_PLATFORM_PACKAGES_DIR": str(self.packages),
            "AIRFLOW_PLATFORM_WHEEL_CACHE": str(self.cache),
            "AIRFLOW_HOME": str(self.root / "home"),
        }
        env |= extra
        return env

    def write_startup(self, text: str) -> Path:
        path = self.layout.startup_script
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def write_requirements(self, text: str) -> Path:
        path = self.layout.requirements
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def make_plugins(self) -> Path:
        plugins = self.layout.plugins
        plugins.mkdir(parents=True, exist_ok=True)
        return plugins


def build_wheel(
    directory: Path, name: str, version: str, body: str = "VALUE = 1\n", requires: str = ""
) -> Path:
    """A real, minimal pure-Python wheel (with its RECORD), for installs without an index;
    `requires` is a dependency (Requires-Dist) it declares."""
    import base64
    import hashlib
    import zipfile

    module = name.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": body,
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        + (f"Requires-Dist: {requires}\n" if requires else ""),
        f"{dist_info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: airflow-platform-tests\n"
            "Root-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for path, text in files.items():
        digest = hashlib.sha256(text.encode()).digest()
        b64 = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        record.append(f"{path},sha256={b64},{len(text.encode())}")
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = "\n".join(record) + "\n"
    directory.mkdir(parents=True, exist_ok=True)
    wheel = directory / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


def sha256_of(path: Path) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
