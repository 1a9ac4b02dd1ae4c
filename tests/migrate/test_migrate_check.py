"""`migrate check` on an MWAA 2.x environment in a moto bucket: every rule has a file that
breaks it and must be reported with its level, line and fix; the clean files must come
out without a single finding; the bucket is only read."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest

from .conftest import DATA, Run

FAB_INSTALLED = importlib.util.find_spec("airflow.providers.fab") is not None

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# file -> (rule, level) pairs it must produce. One file or more per rule.
EXPECTED: dict[str, set[tuple[str, str]]] = {
    "dags/rule_import_error.py": {("MIG001", "blocker"), ("AIR311", "warning")},
    "dags/rule_hang.py": {("MIG002", "blocker")},
    "dags/rule_os_exit.py": {("MIG003", "blocker")},
    "dags/rule_sys_exit.py": {("MIG003", "blocker")},
    "dags/rule_deprecated_import.py": {("MIG004", "warning"), ("AIR312", "warning")},
    "dags/rule_context_keys.py": {("MIG010", "blocker")},
    "dags/rule_template_string.py": {("MIG011", "blocker")},
    "dags/sql/rule_template.sql": {("MIG011", "blocker")},
    "dags/scripts/rule_broken_template.sh": {("MIG012", "warning")},
    "dags/rule_db_access.py": {("MIG020", "blocker")},
    "dags/rule_subdag.py": {("MIG030", "blocker"), ("AIR301", "blocker"), ("MIG001", "blocker")},
    "dags/rule_sla.py": {("MIG031", "warning"), ("MIG004", "warning")},
    "dags/rule_no_schedule.py": {("AIR002", "blocker")},
    "dags/rule_catchup.py": {("MIG033", "warning")},
    "dags/rule_schedule_interval.py": {("AIR301", "blocker"), ("MIG001", "blocker")},
    "dags/rule_syntax_error.py": {("MIG001", "blocker")},
    "dags/lib/rule_helper_syntax.py": {("MIG090", "blocker")},
    # Flask UI plugins stop the API server only where the FAB provider is missing.
    "plugins.zip:rule_flask_ui.py": {("MIG040", "warning" if FAB_INSTALLED else "blocker")},
    "plugins.zip:rule_broken_plugin.py": {("MIG041", "blocker")},
    "requirements.txt": {("MIG050", "blocker")},
    "environment.json": {("MIG060", "warning"), ("MIG061", "warning")},
    "startup.sh": {("MIG070", "blocker"), ("MIG071", "warning")},
}
CLEAN = {
    "dags/clean_taskflow.py",
    "dags/clean_classic.py",
    "dags/common/__init__.py",
    "dags/common/naming.py",
    "dags/sql/clean_query.sql",
    "plugins.zip:clean_macros.py",
}
# Exact places, so a rule that fires on the wrong line fails.
LINES = {
    ("MIG001", "dags/rule_import_error.py"): 5,
    ("MIG010", "dags/rule_context_keys.py"): {10, 13, 20},
    ("MIG011", "dags/sql/rule_template.sql"): {4, 5},
    ("MIG020", "dags/rule_db_access.py"): {8, 12, 13, 17},
    ("MIG050", "requirements.txt"): 2,
    ("MIG070", "startup.sh"): 4,
    ("MIG071", "startup.sh"): 5,
}


def findings(run: Run) -> list[dict[str, Any]]:
    assert run.report is not None, run.stderr
    return list(run.report["findings"])


def test_every_rule_is_reported_on_its_file(checked: tuple) -> None:
    run = checked[0]
    got: dict[str, set[tuple[str, str]]] = {}
    for f in findings(run):
        got.setdefault(f["file"], set()).add((f["rule"], f["level"]))
    missing = {file: want - got.get(file, set()) for file, want in EXPECTED.items()}
    assert not {k: v for k, v in missing.items() if v}, missing


def test_findings_sit_on_the_right_lines(checked: tuple) -> None:
    run = checked[0]
    for (rule, file), want in LINES.items():
        lines = {f["line"] for f in findings(run) if f["rule"] == rule and f["file"] == file}
        assert lines == (want if isinstance(want, set) else {want}), (rule, file, lines)


def test_clean_files_have_no_findings_and_are_ready(checked: tuple) -> None:
    run = checked[0]
    assert run.report is not None
    noisy = [f for f in findings(run) if f["file"] in CLEAN]
    assert noisy == []
    ready = {f["file"] for f in run.report["files"] if f["blockers"] == 0}
    assert {f for f in CLEAN if f.startswith("dags/")} <= ready
    imported = {f["file"]: f["import"] for f in run.report["files"]}
    assert imported["dags/clean_taskflow.py"] == "ok"  # needs pyfiglet from requirements.txt
    assert imported["dags/clean_classic.py"] == "ok"


def test_every_finding_names_rule_place_and_fix(checked: tuple) -> None:
    run = checked[0]
    for f in findings(run):
        assert re.fullmatch(r"(MIG|AIR)\d{3}", f["rule"]), f
        assert f["level"] in ("blocker", "warning", "info"), f
        assert f["file"] and f["message"] and f["fix"], f
        assert "/tmp/" not in f["message"], f  # the working copy's paths stay private
        if f["file"].startswith("dags/") and f["file"].endswith(".py") and f["rule"] != "MIG003":
            assert f["line"], f


def test_a_hanging_and_an_exiting_file_do_not_stop_the_report(checked: tuple) -> None:
    run = checked[0]
    assert run.report is not None
    dag_files = {f["file"]: f["import"] for f in run.report["files"] if f["kind"] == "dag"}
    assert dag_files["dags/rule_hang.py"] == "error"  # stopped by dagbag_import_timeout
    assert dag_files["dags/rule_os_exit.py"] == "exit"
    assert all(status for status in dag_files.values()), dag_files
    assert len(dag_files) == len(list((DATA / "dags").glob("*.py")))


def test_exit_code_summary_and_reports_agree(checked: tuple) -> None:
    run = checked[0]
    assert run.code == 1, run.stderr  # blockers were found
    assert run.report is not None
    summary = run.report["summary"]
    counted = {lvl: sum(f["level"] == lvl for f in findings(run)) for lvl in ("blocker", "warning")}
    assert (summary["blockers"], summary["warnings"]) == (counted["blocker"], counted["warning"])
    assert 0 < summary["ready_files"] < summary["files_checked"]
    row = f"| {summary['files_checked']} | {summary['dag_files']} | {summary['blockers']} |"
    assert row in run.markdown
    for f in findings(run):
        assert f"| {f['rule']} | {f['file']} |" in run.markdown
    assert "| dags/clean_taskflow.py | dag | ok | clean_taskflow | 0 | 0 |" in run.markdown
    assert "readiness" in run.stdout and str(summary["blockers"]) in run.stdout
    assert "Traceback" not in run.stderr + run.stdout


def test_configuration_is_rewritten_with_airflow_rules(checked: tuple) -> None:
    run = checked[0]
    assert run.report is not None
    assert run.report["rewritten_configuration_options"] == {
        "core.default_timezone": "utc",
        "core.max_active_tasks_per_dag": "16",
        "dag_processor.min_file_process_interval": "60",
    }


def test_fix_writes_a_rewritten_copy_and_leaves_the_bucket_alone(checked: tuple) -> None:
    run, fixed, before, after = checked
    assert before == after  # not one object written, replaced or deleted
    assert run.report is not None
    interval = (fixed / "rule_schedule_interval.py").read_text()
    assert 'schedule_interval="@daily"' not in interval and 'schedule="@daily"' in interval
    assets = (fixed / "rule_import_error.py").read_text()
    assert "from airflow.datasets import" not in assets and "Asset(" in assets
    assert (fixed / "clean_classic.py").read_text() == (DATA / "dags/clean_classic.py").read_text()
    left = {(f["rule"], f["file"]) for f in run.report["fix"]["still_needs_a_person"]}
    assert ("AIR301", "dags/rule_schedule_interval.py") not in left
    assert ("MIG010", "dags/rule_context_keys.py") in left  # no safe rewrite for that
    assert "rule_schedule_interval.py" in run.report["fix"]["changed_files"]


def test_the_source_must_be_given(tmp_path: Path) -> None:
    import subprocess

    from .conftest import CLI

    proc = subprocess.run(
        [CLI, "migrate", "check"], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 2
    assert "give the DAGs" in proc.stderr and "Traceback" not in proc.stderr
