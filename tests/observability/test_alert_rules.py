"""Every alert is proven by `promtool test rules`: one series set makes it fire with the
labels and annotations an operator sees, another keeps it quiet."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from .metric_names import alert_exprs
from .prom import RULES, need, rule_groups_file

TESTS = RULES.parent / "tests"
MANIFESTS = RULES.parents[1]


def test_the_rules_pass_promtool_check(tmp_path: Path) -> None:
    done = subprocess.run(
        [need("promtool"), "check", "rules", str(rule_groups_file(tmp_path))],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    cases: dict[str, dict[str, int]] = {a: {"firing": 0, "quiet": 0} for a in alert_exprs()}
    for path in TESTS.glob("*.yaml"):
        for test in yaml.safe_load(path.read_text())["tests"]:
            for check in test.get("alert_rule_test", []):
                kind = "firing" if check["exp_alerts"] else "quiet"
                cases.setdefault(check["alertname"], {"firing": 0, "quiet": 0})[kind] += 1
    lacking = {a: c for a, c in cases.items() if not c["firing"] or not c["quiet"]}
    assert not lacking, f"alerts without a firing and a quiet test: {lacking}"
    unknown = set(cases) - set(alert_exprs())
    assert not unknown, f"tests name alerts the rules do not have: {unknown}"


@pytest.mark.parametrize("test_file", sorted(p.name for p in TESTS.glob("*.yaml")))
def test_promtool_unit_test(tmp_path: Path, test_file: str) -> None:
    rule_groups_file(tmp_path)
    shutil.copy(TESTS / test_file, tmp_path / test_file)
    done = subprocess.run(
        [need("promtool"), "test", "rules", test_file],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_readme_alert_table_lists_every_alert_and_existing_alarms() -> None:
    section = (MANIFESTS / "README.md").read_text().split("\n## Alerts\n", 1)[1]
    rows = re.findall(r"^\| `(\w+)` \|.*\| (?:`([\w.-]+)`.*|—) \|$", section, re.M)
    assert {alert for alert, _ in rows} == set(alert_exprs())
    alarms = {alarm for _, alarm in rows if alarm}
    assert alarms and all((MANIFESTS / "cloudwatch" / "alarms" / a).is_file() for a in alarms)
