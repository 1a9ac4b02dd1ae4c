"""Where the command-line tools the platform drives (helm, kubectl, checkov) are found:
the copies scripts/bootstrap.sh keeps in the checkout's .cache/tools/bin first, so every
machine runs the pinned versions, then PATH."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOOLS_BIN = REPO / ".cache" / "tools" / "bin"


class ToolNotFoundError(FileNotFoundError):
    pass


def find_tool(name: str, repo: Path = REPO) -> str:
    """The bootstrapped `name`, else the one on PATH; a clear error naming the fix otherwise."""
    candidate = repo / ".cache" / "tools" / "bin" / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise ToolNotFoundError(
            f"{name} was not found (looked in {candidate.parent} and PATH): "
            "run ./scripts/bootstrap.sh (make test and make local do)"
        )
    return found
