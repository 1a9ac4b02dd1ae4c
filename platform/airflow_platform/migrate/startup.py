"""startup.sh, read, never run: the variables it sets that the platform protects (the
bootstrap would refuse to start) or that name Airflow options Airflow 3 changed."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

from airflow_platform.bootstrap.startup import is_protected
from airflow_platform.environment.config_rules import config_option_problems
from airflow_platform.migrate.config import apply_change
from airflow_platform.migrate.findings import Finding

FILE = "startup.sh"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SETTERS = {"export", "unset", "readonly", "declare", "typeset", "local"}


def _words(line: str) -> list[str]:
    try:
        return shlex.split(line, comments=True)
    except ValueError:  # an unterminated quote: bash -n reports it
        return line.split()


def assignments(text: str) -> list[tuple[str, int]]:
    """(variable, line) for every variable the script sets, exports or unsets at the start
    of a command (`A=1`, `export A=1 B`, `unset A`); `A=1 cmd` only sets it for `cmd`."""
    found: list[tuple[str, int]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        for command in re.split(r"\s*(?:;|&&|\|\|)\s*", line):
            words = _words(command)
            if not words:
                continue
            if words[0] in _SETTERS:
                names = [w.split("=", 1)[0] for w in words[1:] if not w.startswith("-")]
                found += [(n, number) for n in names if _NAME.match(n)]
            elif all("=" in w and _NAME.match(w.split("=", 1)[0]) for w in words):
                found += [(w.split("=", 1)[0], number) for w in words]
    seen: set[tuple[str, int]] = set()
    return [item for item in found if not (item in seen or seen.add(item))]


def _config_key(name: str) -> str | None:
    if not name.startswith("AIRFLOW__"):
        return None
    parts = name[len("AIRFLOW__") :].split("__")
    if len(parts) != 2:
        return None
    option = parts[1].lower()
    for suffix in ("_cmd", "_secret"):
        option = option.removesuffix(suffix)
    return f"{parts[0].lower()}.{option}"


def startup_findings(path: Path, rules: list[dict[str, Any]]) -> list[Finding]:
    findings: list[Finding] = []
    text = path.read_text(errors="replace")
    bash = shutil.which("bash")
    if bash:
        proc = subprocess.run(
            [bash, "-n", str(path)], capture_output=True, text=True, check=False, timeout=30
        )
        if proc.returncode != 0:
            detail = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
            match = re.search(r"line (\d+)", detail)
            findings.append(
                Finding(
                    "MIG072",
                    "blocker",
                    FILE,
                    int(match.group(1)) if match else None,
                    f"bash cannot parse it: {detail.split(': ', 1)[-1]}",
                    "fix the script: every component runs it before it starts",
                    "bash",
                )
            )
    by_key = {f"{r['section']}.{r['option']}": r for r in rules}
    for name, line in assignments(text):
        if is_protected(name):
            findings.append(
                Finding(
                    "MIG070",
                    "blocker",
                    FILE,
                    line,
                    f"sets {name}, which the platform protects: the component would refuse "
                    "to start",
                    "remove the line; the platform sets this variable itself",
                    "bootstrap",
                )
            )
            continue
        key = _config_key(name)
        if key is None:
            continue
        if key in by_key:
            change = apply_change(key, "", by_key[key])
            if change is not None and change.new_key != key:
                fix = (
                    f"export AIRFLOW__{change.new_key.replace('.', '__').upper()} instead"
                    if change.new_key
                    else change.fix
                )
                findings.append(
                    Finding(
                        "MIG071", "warning", FILE, line, f"{name}: {change.message}", fix, "airflow"
                    )
                )
                continue
        refused = [p for p in config_option_problems(key, "x") if "owned" in p.message]
        for problem in refused:
            findings.append(
                Finding(
                    "MIG070",
                    "blocker",
                    FILE,
                    line,
                    f"{name}: {problem.message}",
                    "remove the line",
                    "platform",
                )
            )
    return findings
