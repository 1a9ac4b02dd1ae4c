"""The whole readiness check of one MWAA 2.x environment, as one report."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_platform.migrate.config import catchup_by_default, check_options
from airflow_platform.migrate.findings import LEVELS, FileStatus, Finding
from airflow_platform.migrate.fix import FixOutcome, write_fixed_copy
from airflow_platform.migrate.imports import (
    DAG_FILE_PROCESSOR_TIMEOUT,
    DAGBAG_IMPORT_TIMEOUT,
    ProbeResults,
    import_findings,
    run_probe,
)
from airflow_platform.migrate.plugins import plugin_findings
from airflow_platform.migrate.requirements import check_requirements_file, platform_constraints
from airflow_platform.migrate.ruff_rules import ruff_findings
from airflow_platform.migrate.source import Inputs, load_environment_json, read_environment
from airflow_platform.migrate.startup import startup_findings
from airflow_platform.migrate.static_rules import (
    Facts,
    python_findings,
    template_findings,
)
from airflow_platform.migrate.templates import TEMPLATE_SUFFIXES

TARGET = "3.3.2"
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / (
    "airflow-platform/migrate"
)
_IMPORT_LINE = re.compile(r"^\s*(from\s+\S+\s+import\b|import\s)")


class CheckError(RuntimeError):
    """The check cannot run; the message says why and what to change."""


@dataclass
class CheckOptions:
    source: str | None = None
    environment: Path | None = None
    plugins: str | None = None
    requirements: str | None = None
    startup: str | None = None
    constraints: Path | None = None
    cache_dir: Path = DEFAULT_CACHE
    import_timeout: float = DAGBAG_IMPORT_TIMEOUT
    file_timeout: float = DAG_FILE_PROCESSOR_TIMEOUT
    parallel: int = 0
    fix_dir: Path | None = None
    install_requirements: bool = True


@dataclass
class Report:
    origin: str
    target: str = TARGET
    files: list[FileStatus] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    rewritten_options: dict[str, str] | None = None
    notes: list[str] = field(default_factory=list)
    fix: FixOutcome | None = None
    after_fix: list[Finding] | None = None
    seconds: float = 0.0

    def count(self, level: str, findings: list[Finding] | None = None) -> int:
        return sum(1 for f in (self.findings if findings is None else findings) if f.level == level)

    @property
    def dag_files(self) -> list[FileStatus]:
        return [f for f in self.files if f.kind == "dag"]

    def ready_files(self) -> list[str]:
        blocked = {f.file for f in self.findings if f.level == "blocker"}
        return [
            f.file
            for f in self.files
            if f.kind in ("dag", "module", "template") and f.file not in blocked
        ]

    def summary(self) -> dict[str, Any]:
        return {
            "files_checked": len(self.files),
            "dag_files": len(self.dag_files),
            "blockers": self.count("blocker"),
            "warnings": self.count("warning"),
            "infos": self.count("info"),
            "ready_files": len(self.ready_files()),
            "files_with_blockers": len({f.file for f in self.findings if f.level == "blocker"}),
        }


Progress = Callable[[str, int | None], None]  # (stage or file, total files once known)


def _no_progress(_: str, __: int | None) -> None:
    pass


def _unpack_plugins(inputs: Inputs, work: Path, findings: list[Finding]) -> Path | None:
    from airflow_platform.dagsync.safezip import UnsafeArchive, extract
    from airflow_platform.dagsync.settings import (
        DEFAULT_PLUGINS_MAX_BYTES,
        DEFAULT_PLUGINS_MAX_ENTRIES,
    )

    archive = inputs.artifacts.get("plugins")
    if archive is None:
        return None
    folder = work / "plugins"
    folder.mkdir()
    try:
        extract(
            archive,
            folder,
            max_entries=DEFAULT_PLUGINS_MAX_ENTRIES,
            max_bytes=DEFAULT_PLUGINS_MAX_BYTES,
        )
    except UnsafeArchive as exc:
        shutil.rmtree(folder, ignore_errors=True)
        findings.append(
            Finding(
                "MIG042",
                "blocker",
                "plugins.zip",
                None,
                f"the platform refuses this archive: {exc}",
                "rebuild plugins.zip from the plugin sources (zip -r plugins.zip .)",
                "dagsync",
            )
        )
        return None
    return folder


def _install(
    inputs: Inputs, installable: str, opts: CheckOptions, work: Path, notes: list[str]
) -> Path | None:
    from airflow_platform.bootstrap.install import Installer
    from airflow_platform.bootstrap.result import RequirementsError
    from airflow_platform.bootstrap.settings import BootstrapSettings
    from airflow_platform.paths import SyncLayout

    path = inputs.artifacts.get("requirements")
    if path is None or not opts.install_requirements:
        return None
    if not installable.strip():
        notes.append("nothing from requirements.txt could be installed for the import test")
        return None
    settings = BootstrapSettings(
        layout=SyncLayout(work / "sync"),
        packages_dir=work / "packages",
        cache_dir=opts.cache_dir,
        constraints=opts.constraints,
        on_failure="fail",
        startup_timeout=300.0,
        cache_mode="tree",
    )
    from airflow_platform.migrate.requirements import uv_env

    installer = Installer(settings, uv_env(opts.cache_dir), log=lambda m: None)
    try:
        result = installer.install(path, installable.encode())
    except RequirementsError as exc:
        notes.append(
            "the import test ran without requirements.txt (it could not be installed: "
            f"{str(exc).splitlines()[0]})"
        )
        return None
    notes.append(
        f"requirements.txt installed for the import test ({result.status}, "
        f"{len(result.packages)} package(s))"
    )
    return settings.packages_dir if result.installed else None


def _downgrade_working_imports(
    findings: list[Finding], probe: ProbeResults, dags: Path
) -> list[Finding]:
    """AIR301/AIR302 on an import statement that Airflow 3.3.2 imported fine: a warning."""
    ok = {f"dags/{rel}" for rel, r in probe.files.items() if r.get("status") == "ok"}
    out = []
    for finding in findings:
        if finding.rule in ("AIR301", "AIR302") and finding.file in ok and finding.line:
            lines = (dags / finding.file.removeprefix("dags/")).read_text(errors="replace")
            text = lines.splitlines()[finding.line - 1] if finding.line else ""
            if _IMPORT_LINE.match(text):
                finding = Finding(
                    finding.rule,
                    "warning",
                    finding.file,
                    finding.line,
                    finding.message + " (Airflow 3.3.2 imported this file without error)",
                    finding.fix,
                    finding.tool,
                )
        out.append(finding)
    return out


def static_findings(root: Path, facts: Facts, prefix: str = "dags/") -> list[Finding]:
    findings = ruff_findings(root, prefix)
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        rel = prefix + path.relative_to(root).as_posix()
        try:
            if path.suffix == ".py":
                findings += python_findings(rel, path.read_text(errors="replace"), facts)
            elif path.suffix in TEMPLATE_SUFFIXES:
                text = path.read_text(errors="replace")
                findings += list(template_findings(rel, text, facts.removed_context_keys))
        except (OSError, RecursionError, ValueError) as exc:  # one odd file, not the report
            findings.append(
                Finding(
                    "MIG091",
                    "warning",
                    rel,
                    None,
                    f"could not be analysed: {exc}",
                    "review it by hand",
                    "ast",
                )
            )
    return findings


def _file_statuses(inputs: Inputs, probe: ProbeResults) -> list[FileStatus]:
    statuses = []
    dag_files = set(probe.dag_files)
    for path in sorted(inputs.dags.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(inputs.dags).as_posix()
        if rel in dag_files:
            result = probe.files.get(rel, {})
            statuses.append(
                FileStatus(
                    f"dags/{rel}",
                    "dag",
                    imported=str(result.get("status", "")),
                    dags=[d["dag_id"] for d in result.get("dags", [])],
                    seconds=float(result.get("seconds", 0.0)),
                )
            )
        elif path.suffix == ".py":
            statuses.append(FileStatus(f"dags/{rel}", "module"))
        elif path.suffix in TEMPLATE_SUFFIXES:
            statuses.append(FileStatus(f"dags/{rel}", "template"))
    for what, name in (
        ("plugins", "plugins.zip"),
        ("requirements", "requirements.txt"),
        ("startup", "startup.sh"),
    ):
        if inputs.artifacts.get(what) is not None:
            statuses.append(FileStatus(name, what))
    if inputs.environment:
        statuses.append(FileStatus("environment.json", "environment"))
    return statuses


def _dedupe(findings: list[Finding]) -> list[Finding]:
    failed = {f.file for f in findings if f.rule in ("MIG001", "MIG002", "MIG003")}
    seen: set[tuple[Any, ...]] = set()
    out = []
    for f in findings:
        if f.rule == "MIG090" and f.file in failed:
            continue  # the import error already names the syntax error and its line
        key = (f.rule, f.file, f.line, f.message)
        if key not in seen:
            seen.add(key)
            out.append(f)
    order = {level: i for i, level in enumerate(LEVELS)}
    return sorted(out, key=lambda f: (f.file, order[f.level], f.line or 0, f.rule))


def run_check(opts: CheckOptions, progress: Progress = _no_progress) -> Report:
    started = time.monotonic()
    environment: dict[str, Any] = {}
    if opts.environment is not None:
        environment = load_environment_json(opts.environment)
    source = opts.source
    if not source:
        from airflow_platform.migrate.source import source_from_environment

        source = source_from_environment(environment)
    opts.cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="migrate-check-") as tmp:
        work = Path(tmp)
        progress("reading the environment", None)
        inputs = read_environment(
            source,
            work,
            plugins=opts.plugins,
            requirements=opts.requirements,
            startup=opts.startup,
            environment=environment,
        )
        report = Report(origin=inputs.origin, notes=list(inputs.notes))
        findings: list[Finding] = []
        plugins_dir = _unpack_plugins(inputs, work, findings)

        requirements = inputs.artifacts.get("requirements")
        packages = None
        if requirements is not None:
            progress("resolving requirements.txt", None)
            try:
                constraints = platform_constraints(opts.constraints)
            except FileNotFoundError as exc:
                raise CheckError(str(exc)) from None
            outcome = check_requirements_file(requirements, constraints, opts.cache_dir)
            findings += outcome.findings
            progress("installing requirements.txt", None)
            packages = _install(inputs, outcome.installable, opts, work, report.notes)

        options = {
            str(k): str(v)
            for k, v in (environment.get("AirflowConfigurationOptions") or {}).items()
        }
        progress("starting Airflow", None)
        probe = run_probe(
            work,
            inputs.dags,
            plugins_dir,
            packages,
            options,
            import_timeout=opts.import_timeout,
            file_timeout=opts.file_timeout,
            parallel=opts.parallel,
            on_files=lambda total: progress("importing DAG files", total),
            on_file=lambda rel: progress(f"file:{rel}", None),
        )
        facts = probe.facts
        static_facts = Facts(
            removed_context_keys=frozenset(facts["removed_context_keys"]),
            orm_models=frozenset(facts["orm_models"]),
            catchup_by_default=catchup_by_default(options),
        )
        findings += import_findings(probe, inputs.dags)
        progress("static rules", None)
        findings += _downgrade_working_imports(
            static_findings(inputs.dags, static_facts), probe, inputs.dags
        )
        if plugins_dir is not None:
            findings += plugin_findings(
                plugins_dir,
                probe.plugins,
                set(facts["plugin_attributes"]),
                bool(facts["fab_provider"]),
            )
            findings += ruff_findings(plugins_dir, "plugins.zip:")
        if environment:
            config = check_options(options, facts["config_changes"], set(facts["known_options"]))
            findings += config.findings
            report.rewritten_options = config.rewritten
            version = str(environment.get("AirflowVersion") or "")
            if version:
                report.notes.append(
                    f"the environment runs Airflow {version}; the target is {TARGET}"
                )
        startup = inputs.artifacts.get("startup")
        if startup is not None:
            findings += startup_findings(startup, facts["config_changes"])
        report.findings = _dedupe(findings)
        report.files = _file_statuses(inputs, probe)
        if opts.fix_dir is not None:
            progress("writing the fixed copy", None)
            report.fix = write_fixed_copy(inputs.dags, opts.fix_dir)
            after = static_findings(opts.fix_dir, static_facts)
            report.after_fix = _dedupe(after)
    report.seconds = time.monotonic() - started
    return report
