"""`--fix OUT_DIR`: a copy of the DAGs with the safe automatic rewrites applied.

ruff's safe AIR3 fixes do the documented rewrites (`schedule_interval=` -> `schedule=`,
`airflow.datasets.Dataset` -> `airflow.sdk.Asset`, moved imports...). A fix that replaces
a name leaves the old import behind; an import from an `airflow.` module that nothing uses
any more is removed too, with ruff's own F401 edit, because on Airflow 3 that module may no
longer exist. Nothing else is touched; the source is never written.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from airflow_platform.migrate.ruff_rules import ruff_binary, ruff_fix


class FixError(RuntimeError):
    pass


@dataclass
class FixOutcome:
    out_dir: Path
    changed_files: list[str] = field(default_factory=list)
    summary: str = ""


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*.py")}


def _offset(lines: list[str], row: int, column: int) -> int:
    return sum(len(line) for line in lines[: row - 1]) + column - 1


def _drop_unused_airflow_imports(root: Path) -> None:
    proc = subprocess.run(
        [
            ruff_binary(),
            "check",
            "--isolated",
            "--select",
            "F401",
            "--output-format",
            "json",
            "--exit-zero",
            "--no-cache",
            ".",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    edits_by_file: dict[str, list[dict]] = {}
    for item in json.loads(proc.stdout or "[]"):
        message = str(item.get("message", ""))
        if not message.startswith("`airflow.") or not item.get("fix"):
            continue
        edits_by_file.setdefault(item["filename"], []).extend(item["fix"]["edits"])
    for filename, edits in edits_by_file.items():
        path = Path(filename)
        text = path.read_text()
        lines = text.splitlines(keepends=True)
        spans = sorted(
            (
                _offset(lines, e["location"]["row"], e["location"]["column"]),
                _offset(lines, e["end_location"]["row"], e["end_location"]["column"]),
                e.get("content") or "",
            )
            for e in edits
        )
        last_start = len(text) + 1
        for start, end, content in reversed(spans):
            if end > last_start:
                continue  # overlapping edits (one statement, two names): keep the first
            text = text[:start] + content + text[end:]
            last_start = start
        path.write_text(text)


def write_fixed_copy(dags: Path, out_dir: Path) -> FixOutcome:
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FixError(f"--fix {out_dir} is not empty; give a new or empty folder")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(dags, out_dir, dirs_exist_ok=True)
    before = _snapshot(out_dir)
    summary = ruff_fix(out_dir)
    _drop_unused_airflow_imports(out_dir)
    after = _snapshot(out_dir)
    changed = sorted(rel for rel, data in after.items() if before.get(rel) != data)
    return FixOutcome(out_dir, changed, summary)
