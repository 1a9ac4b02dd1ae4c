"""What a requirements install reports, shared by the warm path and the full installer."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


class RequirementsError(RuntimeError):
    pass


@dataclass
class InstallResult:
    status: str  # none | unchanged | tree-cache | wheel-cache | installed
    key: str = ""  # what the installed tree is cached under
    packages: list[str] = field(default_factory=list)
    seconds: float = 0.0
    offline_bundle: Path | None = None
    # The checks' warnings (and "lists nothing to install"), repeated on every start.
    notes: list[str] = field(default_factory=list)
    # False when these exact inputs were checked by an earlier start (see inputs_key).
    checked: bool = True

    @property
    def installed(self) -> bool:
        return self.status != "none"
