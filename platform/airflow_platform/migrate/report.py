"""The report three ways with the same content: a rich summary, JSON and Markdown."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from airflow_platform.migrate.check import Report
from airflow_platform.migrate.findings import RULES, Finding

STYLE = {"blocker": "red", "warning": "yellow", "info": "cyan"}


def as_dict(report: Report) -> dict[str, Any]:
    data: dict[str, Any] = {
        "source": report.origin,
        "target_airflow": report.target,
        "summary": report.summary(),
        "seconds": round(report.seconds, 2),
        "files": [
            {
                "file": f.file,
                "kind": f.kind,
                "import": f.imported,
                "dags": f.dags,
                "blockers": sum(
                    1 for x in report.findings if x.file == f.file and x.level == "blocker"
                ),
                "warnings": sum(
                    1 for x in report.findings if x.file == f.file and x.level == "warning"
                ),
            }
            for f in report.files
        ],
        "findings": [f.as_dict() for f in report.findings],
        "rules": {
            code: RULES[code] for code in sorted({f.rule for f in report.findings} & set(RULES))
        },
        "notes": report.notes,
    }
    if report.rewritten_options is not None:
        data["rewritten_configuration_options"] = report.rewritten_options
    if report.fix is not None:
        data["fix"] = {
            "out_dir": str(report.fix.out_dir),
            "changed_files": report.fix.changed_files,
            "still_needs_a_person": [f.as_dict() for f in report.after_fix or []],
        }
    return data


def to_json(report: Report) -> str:
    return json.dumps(as_dict(report), indent=2) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _findings_md(findings: list[Finding]) -> list[str]:
    lines = ["| level | rule | file | line | finding | fix |", "|---|---|---|---|---|---|"]
    for f in findings:
        lines.append(
            f"| {f.level} | {f.rule} | {_cell(f.file)} | {f.line or ''} | {_cell(f.message)} | "
            f"{_cell(f.fix)} |"
        )
    return lines


def to_markdown(report: Report) -> str:
    s = report.summary()
    out = [
        f"# Airflow {report.target} readiness: {report.origin}",
        "",
        "| files checked | DAG files | blockers | warnings | infos | ready files |",
        "|---|---|---|---|---|---|",
        f"| {s['files_checked']} | {s['dag_files']} | {s['blockers']} | {s['warnings']} | "
        f"{s['infos']} | {s['ready_files']} |",
        "",
        "## Findings",
        "",
        *_findings_md(report.findings),
        "",
        "## Files",
        "",
        "| file | kind | import | DAGs | blockers | warnings |",
        "|---|---|---|---|---|---|",
        *(
            f"| {_cell(f['file'])} | {f['kind']} | {f['import']} | {', '.join(f['dags'])} | "
            f"{f['blockers']} | {f['warnings']} |"
            for f in as_dict(report)["files"]
        ),
    ]
    if report.rewritten_options is not None:
        out += [
            "",
            "## Rewritten AirflowConfigurationOptions",
            "",
            "```json",
            json.dumps(report.rewritten_options, indent=2, sort_keys=True),
            "```",
        ]
    if report.fix is not None:
        out += [
            "",
            f"## After --fix ({report.fix.out_dir})",
            "",
            f"Rewritten files: {', '.join(report.fix.changed_files) or 'none'}.",
            "",
            "Still needs a person:",
            "",
            *_findings_md(report.after_fix or []),
        ]
    if report.notes:
        out += ["", "## Notes", "", *(f"- {_cell(n)}" for n in report.notes)]
    return "\n".join(out) + "\n"


def print_summary(report: Report, console: Console, details: bool = True) -> None:
    if details and report.findings:
        table = Table(title="Findings", expand=True)
        table.add_column("level", no_wrap=True)
        table.add_column("rule", no_wrap=True)
        table.add_column("where", overflow="fold", ratio=1)
        table.add_column("finding / fix", overflow="fold", ratio=3)
        for f in report.findings:
            where = f"{f.file}:{f.line}" if f.line else f.file
            text = Text(f.message)
            text.append(f"\n-> {f.fix}", style="dim")
            table.add_row(f"[{STYLE[f.level]}]{f.level}[/]", f.rule, where, text)
        console.print(table)
    if report.fix is not None:
        console.print(
            f"--fix wrote {report.fix.out_dir} ({len(report.fix.changed_files)} file(s) "
            f"rewritten); still needs a person: {report.count('blocker', report.after_fix)} "
            f"blocker(s), {report.count('warning', report.after_fix)} warning(s)"
        )
    for note in report.notes:
        console.print(f"note: {note}", markup=False)
    s = report.summary()
    summary = Table(title=f"Airflow {report.target} readiness of {report.origin}")
    for column in ("files checked", "DAG files", "blockers", "warnings", "ready files"):
        summary.add_column(column, justify="right")
    summary.add_row(
        str(s["files_checked"]),
        str(s["dag_files"]),
        f"[red]{s['blockers']}[/]" if s["blockers"] else "0",
        f"[yellow]{s['warnings']}[/]" if s["warnings"] else "0",
        str(s["ready_files"]),
    )
    console.print(summary)
