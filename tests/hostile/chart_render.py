"""`helm template` of the chart with hostile values, keeping what helm printed and refused."""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parents[2] / "charts" / "airflow-platform"
DEFAULT_VALUES = CHART / "ci" / "default-values.yaml"


@dataclass(frozen=True)
class HelmRun:
    returncode: int
    stdout: str
    stderr: str

    @property
    def refused(self) -> bool:
        return self.returncode != 0

    def objects(self) -> list[dict[str, Any]]:
        return [doc for doc in yaml.safe_load_all(self.stdout) if doc]


def helm_template(helm: str, values: dict[str, Any]) -> HelmRun:
    """The minimal installation (ci/default-values.yaml) with `values` on top."""
    with tempfile.TemporaryDirectory(prefix="hostile-values-") as tmp:
        extra = Path(tmp) / "values.yaml"
        extra.write_text(yaml.safe_dump(values))
        done = subprocess.run(
            [helm, "template", "airflow", str(CHART), "--namespace", "airflow",
             "-f", str(DEFAULT_VALUES), "-f", str(extra)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    return HelmRun(done.returncode, done.stdout, done.stderr)
