"""requirements.txt against the platform: the bootstrap's own checks (constraints and
essential packages), a real resolution with `uv pip compile --constraints`, providers
that need their Airflow 3 releases, and the install the import test runs with."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from airflow_platform.bootstrap.check import check_requirements
from airflow_platform.bootstrap.constraints import (
    Constraints,
    essential_versions,
    installed_distributions,
)
from airflow_platform.bootstrap.install import uv_compile, uv_environment
from airflow_platform.bootstrap.requirements_file import RequirementsFile, parse_requirements
from airflow_platform.migrate.findings import Finding

FILE = "requirements.txt"
PROVIDER_PREFIX = "apache-airflow-providers-"
_PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;]+)")


@dataclass
class RequirementsOutcome:
    findings: list[Finding] = field(default_factory=list)
    installable: str = ""  # the file without the lines that cannot be installed
    resolved: dict[str, str] = field(default_factory=dict)


def platform_constraints(path: Path | None) -> Constraints:
    if path is not None:
        return Constraints.from_file(path)
    return Constraints.from_installed(installed_distributions())


def uv_env(cache_dir: Path) -> dict[str, str]:
    env = uv_environment(os.environ, cache_dir)
    if env.get("SSL_CERT_FILE"):
        env.setdefault("UV_NATIVE_TLS", "1")  # the machine's CA, not uv's bundled list
    return env


def compile_requirements(
    text: str, constraints: Constraints, cache_dir: Path
) -> tuple[dict[str, str] | None, str]:
    """(name -> version, "") when `text` resolves with the constraints; (None, uv's error)."""
    lines, error = uv_compile(text, constraints, uv_env(cache_dir))
    if lines is None:
        return None, error
    resolved = {}
    for line in lines:
        match = _PIN.match(line.strip())
        if match:
            resolved[canonicalize_name(match.group(1))] = match.group(2)
    return resolved, ""


def _line_of(message: str, parsed: RequirementsFile) -> int | None:
    lowered = message.lower()
    for entry in parsed.requirements:
        if entry.requirement.name.lower() in lowered or entry.name in lowered:
            return entry.line
    return None


def _uv_summary(error: str) -> str:
    lines = [
        line.strip()
        for line in error.splitlines()
        if line.strip() and not line.strip().startswith(("hint:", "Using "))
    ]
    text = " ".join(lines).replace("╰─▶", "").replace("\u00d7", "").strip()
    return re.sub(r"\s+", " ", text)[:900]


def _major(version: str) -> int | None:
    try:
        return Version(version).major
    except InvalidVersion:
        return None


def check_requirements_file(
    path: Path, constraints: Constraints, cache_dir: Path, resolve: bool = True
) -> RequirementsOutcome:
    outcome = RequirementsOutcome()
    text = path.read_text(errors="replace")
    parsed = parse_requirements(text)
    installed = installed_distributions()
    essentials = essential_versions(installed)
    report = check_requirements(parsed, constraints, essentials)
    bad_lines = {issue.line for issue in report.errors}
    for issue in report.errors:
        fix = "remove the line" if "essential" in issue.message else "change the pin"
        if "apache-airflow" in issue.message and "essential" in issue.message:
            fix = "remove the line: the platform provides Airflow 3.3.2 and its core providers"
        outcome.findings.append(
            Finding("MIG050", "blocker", FILE, issue.line, issue.message, fix, "bootstrap")
        )
    for issue in report.warnings:
        outcome.findings.append(
            Finding(
                "MIG051", "info", FILE, issue.line, issue.message, "see the message", "bootstrap"
            )
        )
    kept = [
        entry
        for entry in parsed.requirements
        if entry.line not in bad_lines and entry.name not in report.provided
    ]
    outcome.installable = "\n".join([*parsed.options, *(e.text for e in kept)]) + "\n"
    if not resolve or not kept:
        return outcome
    resolved, error = compile_requirements(outcome.installable, constraints, cache_dir)
    if resolved is None:
        outcome.findings.append(
            Finding(
                "MIG050",
                "blocker",
                FILE,
                _line_of(error, parsed),
                f"uv cannot resolve it with the platform's constraints: {_uv_summary(error)}",
                "pin versions that work with the constraints (see "
                "`airflow-platform requirements test`)",
                "uv",
            )
        )
        outcome.installable = ""
        return outcome
    outcome.resolved = resolved
    _provider_moves(outcome, kept, parsed, constraints, cache_dir, essentials)
    return outcome


def _provider_moves(
    outcome: RequirementsOutcome,
    kept: list,
    parsed: RequirementsFile,
    constraints: Constraints,
    cache_dir: Path,
    essentials: dict[str, str],
) -> None:
    """A provider pinned to a release line older than the one uv picks for Airflow 3."""
    pinned = {
        e.name: (e, next((s.version for s in e.requirement.specifier if s.operator == "=="), None))
        for e in kept
        if e.name.startswith(PROVIDER_PREFIX) and e.name not in essentials
    }
    pinned = {name: item for name, item in pinned.items() if item[1]}
    if not pinned:
        return
    free = [*parsed.options] + [e.name if e.name in pinned else e.text for e in kept]
    latest, _ = compile_requirements("\n".join(free) + "\n", constraints, cache_dir)
    for name, (entry, version) in sorted(pinned.items()):
        target = (latest or {}).get(name)
        if not target or not version:
            continue
        have, want = _major(version), _major(target)
        if have is not None and want is not None and have < want:
            outcome.findings.append(
                Finding(
                    "MIG052",
                    "warning",
                    FILE,
                    entry.line,
                    f"{entry.text} is from the {have}.x line; the release resolved for Airflow "
                    f"3.3.2 is {target} ({want}.x)",
                    f"pin {entry.requirement.name}=={target} and check its changelog",
                    "uv",
                )
            )
