"""Reading requirements.txt the way MWAA users write it.

Supported: requirement specifiers (PEP 508), comments, line continuations, the index
options teams use for private repositories (--index-url, --extra-index-url, --find-links,
--trusted-host, --no-index, ...), and pip's hash-checking mode (`--hash=sha256:...` after a
requirement, `--require-hashes`): with it every requirement must be pinned with == and
carry its hashes, and the installer refuses any wheel whose hash does not match. A
`--constraint` line (MWAA's docs put one first) is ignored: the platform's constraints
always apply. MWAA's own paths (/usr/local/airflow/plugins, /usr/local/airflow/dags) are
mapped to this platform's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from airflow_platform.paths import SyncLayout

# Options passed through to the installer, with whether they take a value.
_PASS_THROUGH = {
    "-i": True,
    "--index-url": True,
    "--extra-index-url": True,
    "-f": True,
    "--find-links": True,
    "--trusted-host": True,
    "--no-index": False,
    "--pre": False,
    "--prefer-binary": False,
    "--only-binary": True,
    "--no-binary": True,
}
_IGNORED = {"-c": "constraint", "--constraint": "constraint"}
REQUIRE_HASHES = "--require-hashes"
# pip's accepted algorithms and the length of their hex digests.
_HASH = re.compile(r"^(sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128})$")
_HASH_HELP = (
    "generate them with `pip-compile --generate-hashes` or `pip hash <wheel>` "
    "(sha256, sha384 or sha512, in hex)"
)
_REFUSED = {
    "-r": "include other files: put every requirement in this one file",
    "--requirement": "include other files: put every requirement in this one file",
    "-e": "install editable sources: build a wheel instead (see `requirements package`)",
    "--editable": "install editable sources: build a wheel instead (see `requirements package`)",
}
_COMMENT = re.compile(r"(^|\s+)#.*$")
MWAA_PLUGINS = "/usr/local/airflow/plugins"
MWAA_DAGS = "/usr/local/airflow/dags"


@dataclass(frozen=True)
class LineIssue:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class RequirementLine:
    line: int
    text: str
    requirement: Requirement
    hashes: tuple[str, ...] = ()  # "sha256:<hex>", as written after --hash=

    def installer_line(self, hashes: bool = True) -> str:
        if not hashes or not self.hashes:
            return self.text
        return " ".join([self.text, *(f"--hash={h}" for h in self.hashes)])

    @property
    def name(self) -> str:
        return canonicalize_name(self.requirement.name)


@dataclass
class RequirementsFile:
    requirements: list[RequirementLine] = field(default_factory=list)
    options: list[str] = field(default_factory=list)  # installer options, one per line
    errors: list[LineIssue] = field(default_factory=list)
    warnings: list[LineIssue] = field(default_factory=list)
    require_hashes: bool = False  # the file says --require-hashes

    @property
    def checks_hashes(self) -> bool:
        """pip's hash-checking mode: on with --require-hashes or any --hash."""
        return self.require_hashes or any(r.hashes for r in self.requirements)

    def hashes_of(self, name: str) -> tuple[str, ...]:
        return next((r.hashes for r in self.requirements if r.name == name), ())

    def installer_text(
        self, skip: set[str] | frozenset[str] = frozenset(), hashes: bool = True
    ) -> str:
        """The file as handed to the installer: options first, then requirements (with
        their hashes unless `hashes` is False, as the resolver gets them)."""
        lines = [*self.options]
        if hashes and self.checks_hashes:
            lines.append(REQUIRE_HASHES)
        lines += [r.installer_line(hashes) for r in self.requirements if r.name not in skip]
        return "\n".join(lines) + "\n"


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Join backslash continuations; keep the number of the first physical line."""
    out: list[tuple[int, str]] = []
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        if raw.endswith("\\"):
            pending += raw[:-1]
            continue
        out.append((start, pending + raw))
        pending = ""
    if pending:
        out.append((start, pending))
    return out


def _map_mwaa_paths(value: str, layout: SyncLayout) -> str:
    return value.replace(MWAA_PLUGINS, str(layout.plugins)).replace(MWAA_DAGS, str(layout.dags))


def parse_requirements(text: str, layout: SyncLayout | None = None) -> RequirementsFile:
    layout = layout or SyncLayout.from_env()
    result = RequirementsFile()
    seen: dict[str, int] = {}
    for number, raw in _logical_lines(text):
        line = _COMMENT.sub("", raw).strip()
        if not line:
            continue
        if line.startswith("-"):
            _parse_option(number, line, layout, result)
            continue
        spec, _, per_line = line.partition(" --")
        hashes = _per_line_options(number, f"--{per_line}" if per_line else "", result)
        try:
            requirement = Requirement(spec.strip())
        except InvalidRequirement as exc:
            result.errors.append(
                LineIssue(number, f"not a valid requirement {spec.strip()!r}: {exc}")
            )
            continue
        entry = RequirementLine(number, spec.strip(), requirement, hashes)
        if entry.name in seen:
            result.errors.append(
                LineIssue(
                    number,
                    f"{requirement.name} is already required on line {seen[entry.name]}; "
                    "keep one line per package",
                )
            )
            continue
        seen[entry.name] = number
        result.requirements.append(entry)
    if result.checks_hashes:
        _check_hash_mode(result)
    return result


def _per_line_options(number: int, text: str, result: RequirementsFile) -> tuple[str, ...]:
    """The hashes of one requirement line; any other per-requirement option is ignored."""
    hashes: list[str] = []
    tokens = text.split()
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        option, eq, value = token.partition("=")
        if option != "--hash":
            if token.startswith("--"):
                result.warnings.append(
                    LineIssue(number, f"per-requirement option {option} is ignored")
                )
            continue
        if not eq and index < len(tokens):
            value, index = tokens[index], index + 1
        if _HASH.match(value):
            hashes.append(value)
        else:
            result.errors.append(
                LineIssue(number, f"--hash={value} is not a valid hash; {_HASH_HELP}")
            )
    return tuple(hashes)


def _check_hash_mode(result: RequirementsFile) -> None:
    # pip's rules for hash-checking mode: all or nothing, exact versions only.
    why = "hash checking is on (a --hash line or --require-hashes)"
    for entry in result.requirements:
        exact = [s for s in entry.requirement.specifier if s.operator in ("==", "===")]
        if entry.requirement.url or not exact or "*" in exact[0].version:
            result.errors.append(
                LineIssue(
                    entry.line,
                    f"{entry.text} is not pinned to one version, and {why}: "
                    f"write {entry.requirement.name}==X.Y.Z with its --hash",
                )
            )
        elif not entry.hashes:
            result.errors.append(
                LineIssue(
                    entry.line,
                    f"{entry.text} has no --hash, and {why}: every requirement needs its "
                    f"hashes; {_HASH_HELP}",
                )
            )


def _parse_option(number: int, line: str, layout: SyncLayout, result: RequirementsFile) -> None:
    if "=" in line.split()[0]:
        option, _, value = line.partition("=")
    else:
        option, _, value = line.partition(" ")
    option, value = option.strip(), value.strip().strip("\"'")
    if option == REQUIRE_HASHES:
        result.require_hashes = True
    elif option in _IGNORED:
        result.warnings.append(
            LineIssue(
                number,
                f"{option} {value} is ignored: the platform's constraints file always applies",
            )
        )
    elif option in _REFUSED:
        result.errors.append(LineIssue(number, f"{option} is not supported: {_REFUSED[option]}"))
    elif option in _PASS_THROUGH:
        if _PASS_THROUGH[option] and not value:
            result.errors.append(LineIssue(number, f"{option} needs a value"))
            return
        value = _map_mwaa_paths(value, layout)
        result.options.append(f"{option} {value}".strip())
    else:
        result.errors.append(
            LineIssue(
                number,
                f"unknown option {option}; supported: {', '.join(sorted(_PASS_THROUGH))}",
            )
        )


def read_requirements(path: Path, layout: SyncLayout | None = None) -> RequirementsFile:
    return parse_requirements(path.read_text(), layout)
