"""The on-disk layout every component shares (one place, so the chart, dagsync and the
entrypoint agree). In a pod the sync root is the shared emptyDir mounted at SYNC_ROOT;
the local runner points AIRFLOW_PLATFORM_SYNC_ROOT at its state directory instead."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SYNC_ROOT_ENV = "AIRFLOW_PLATFORM_SYNC_ROOT"
DEFAULT_SYNC_ROOT = Path("/opt/airflow/sync")


@dataclass(frozen=True)
class SyncLayout:
    """Where dagsync publishes and where Airflow and the entrypoint read.

    dags/current and plugins/current are symlinks swapped atomically by dagsync;
    Airflow's dags_folder and plugins_folder point at them.
    """

    root: Path

    @classmethod
    def from_env(cls) -> SyncLayout:
        return cls(Path(os.environ.get(SYNC_ROOT_ENV, str(DEFAULT_SYNC_ROOT))))

    @property
    def dags(self) -> Path:
        return self.root / "dags" / "current"

    @property
    def plugins(self) -> Path:
        return self.root / "plugins" / "current"

    @property
    def requirements(self) -> Path:
        return self.root / "requirements" / "requirements.txt"

    @property
    def startup_script(self) -> Path:
        return self.root / "startup" / "startup.sh"

    @property
    def ready_file(self) -> Path:
        return self.root / ".ready"
