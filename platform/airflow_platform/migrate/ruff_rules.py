"""ruff's Airflow 3 rules (AIR3xx, plus AIR002 for the schedule default), run on the DAGs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from airflow_platform.migrate.findings import Finding, Level

SELECT = "AIR3,AIR002"
LEVELS: dict[str, Level] = {
    "AIR301": "blocker",  # removed in Airflow 3
    "AIR302": "blocker",  # moved to a provider, no compatibility layer
    "AIR303": "blocker",  # signature changed: raises at run time
    "AIR002": "blocker",  # no schedule: 2.x ran daily, 3.x never
    "AIR311": "warning",  # still works through a compatibility layer
    "AIR312": "warning",
    "AIR321": "warning",  # moved in 3.1
    "AIR304": "warning",  # a value that changes at every parse
}
SCHEDULE_FIX = (
    "add schedule='@daily' (or the timedelta(days=1) Airflow 2 used) to keep it running, "
    "or schedule=None if it is only triggered"
)


class RuffMissing(RuntimeError):
    pass


def ruff_binary() -> str:
    try:
        from ruff.__main__ import find_ruff_bin

        return str(find_ruff_bin())
    except (ImportError, FileNotFoundError):
        pass
    candidate = Path(sys.executable).parent / "ruff"
    found = str(candidate) if candidate.exists() else shutil.which("ruff")
    if not found:
        raise RuffMissing(
            "ruff is not installed: `pip install ruff` (it provides the AIR3 rules the check runs)"
        )
    return found


def _args(select: str) -> list[str]:
    # --isolated: the user's own ruff configuration (or ours) must not change the rules.
    return [ruff_binary(), "check", "--isolated", "--preview", "--select", select, "--no-cache"]


def run_ruff(root: Path) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [*_args(SELECT), "--output-format", "json", "--exit-zero", "."],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"ruff failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return list(json.loads(proc.stdout or "[]"))


def ruff_findings(root: Path, prefix: str = "dags/") -> list[Finding]:
    """Findings for every AIR rule hit under `root`; file names get `prefix`."""
    findings = []
    for item in run_ruff(root):
        code = item.get("code")
        if not code:
            continue  # a syntax error: the ast and import checks report it
        rel = os.path.relpath(item["filename"], root)
        fix = (item.get("fix") or {}).get("message") or ""
        applicability = (item.get("fix") or {}).get("applicability")
        if code == "AIR002":
            fix = SCHEDULE_FIX
        elif applicability == "safe":
            fix = f"{fix} (applied by --fix)" if fix else "applied by --fix"
        elif not fix:
            fix = "see `ruff rule " + code + "`"
        findings.append(
            Finding(
                code,
                LEVELS.get(code, "warning"),
                prefix + rel,
                item["location"]["row"],
                item["message"],
                fix,
                "ruff",
            )
        )
    return findings


def ruff_fix(root: Path) -> str:
    """Apply ruff's safe AIR fixes in place; return its summary."""
    proc = subprocess.run(
        [*_args("AIR3"), "--fix", "--exit-zero", "."],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"ruff --fix failed: {proc.stderr.strip()[-2000:]}")
    return proc.stdout.strip()
