"""Example environments shipped under examples/environments."""

from __future__ import annotations

from pathlib import Path

import yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "environments"
SPECS = sorted(p for p in EXAMPLES.glob("*.yaml") if not p.name.startswith("eks-overlay"))
SPEC_IDS = [p.stem for p in SPECS]


def spec_data(name: str) -> dict:
    return yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
