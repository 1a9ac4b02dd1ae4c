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
