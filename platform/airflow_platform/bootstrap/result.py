"""What a requirements install reports, shared by the warm path and the full installer."""

from __future__ import annotations

from pathlib import Path


class RequirementsError(RuntimeError):
    pass


class InstallResult:
    # A plain class, like the other records a container start loads: importing
    # dataclasses alone costs every start ~7 ms (see requirements_step).
    __slots__ = ("checked", "key", "notes", "offline_bundle", "packages", "seconds", "status")

    def __init__(
        self,
        status: str,  # none | unchanged | tree-cache | wheel-cache | installed
        key: str = "",  # what the installed tree is cached under
        packages: list[str] | None = None,
        *,
        notes: list[str] | None = None,
        checked: bool = True,
    ) -> None:
        self.status = status
        self.key = key
        self.packages = packages or []
        self.seconds = 0.0
        self.offline_bundle: Path | None = None
        # The checks' warnings (and "lists nothing to install"), repeated on every start.
        self.notes = notes or []
        # False when these exact inputs were checked by an earlier start (see inputs_key).
        self.checked = checked

    @property
    def installed(self) -> bool:
        return self.status != "none"

    def __repr__(self) -> str:
        return (
            f"InstallResult(status={self.status!r}, key={self.key[:12]!r}, "
            f"packages={self.packages!r}, checked={self.checked!r})"
        )
