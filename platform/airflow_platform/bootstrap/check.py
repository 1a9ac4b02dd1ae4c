"""Offline checks of a requirements.txt against the constraints and essential packages."""

from __future__ import annotations

from dataclasses import dataclass, field

from airflow_platform.bootstrap.constraints import Constraints
from airflow_platform.bootstrap.requirements_file import LineIssue, RequirementsFile


@dataclass
class CheckReport:
    errors: list[LineIssue] = field(default_factory=list)
    warnings: list[LineIssue] = field(default_factory=list)
    provided: set[str] = field(default_factory=set)  # essential names a line merely repeats

    @property
    def ok(self) -> bool:
        return not self.errors


def check_requirements(
    parsed: RequirementsFile, constraints: Constraints, essentials: dict[str, str]
) -> CheckReport:
    report = CheckReport(errors=list(parsed.errors), warnings=list(parsed.warnings))
    for entry in parsed.requirements:
        req = entry.requirement
        if entry.name in essentials:
            version = essentials[entry.name]
            if req.url or (req.specifier and not req.specifier.contains(version, prereleases=True)):
                report.errors.append(
                    LineIssue(
                        entry.line,
                        f"{entry.text} would replace {req.name} {version}, an essential package "
                        "the platform runs on; remove the line (the platform provides it)",
                    )
                )
            else:
                report.provided.add(entry.name)
                report.warnings.append(
                    LineIssue(
                        entry.line,
                        f"{req.name} is provided by the platform ({version}); the line has no "
                        "effect and can be removed",
                    )
                )
            continue
        pinned = constraints.pins.get(entry.name)
        if pinned is not None:
            if req.url or (req.specifier and not req.specifier.contains(pinned, prereleases=True)):
                report.errors.append(
                    LineIssue(
                        entry.line,
                        f"{entry.text} conflicts with the constraint {req.name}=={pinned} "
                        f"({constraints.source}); use {req.name}=={pinned} or drop the pin",
                    )
                )
            elif not any(spec.operator in ("==", "===") for spec in req.specifier):
                report.warnings.append(
                    LineIssue(
                        entry.line,
                        f"{req.name} is not pinned; the constraints will install {pinned}: "
                        f"write {req.name}=={pinned}",
                    )
                )
            continue
        if not req.url and not any(spec.operator in ("==", "===") for spec in req.specifier):
            report.warnings.append(
                LineIssue(
                    entry.line,
                    f"{req.name} is not pinned; pin an exact version ({req.name}==X.Y.Z) so "
                    "every start installs the same thing",
                )
            )
    return report
