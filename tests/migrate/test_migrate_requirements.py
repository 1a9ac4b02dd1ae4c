"""requirements.txt against the platform: the bootstrap's checks, then uv's resolution
with the platform constraints (PyPI through uv, as the bootstrap installs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_platform.migrate.requirements import check_requirements_file, platform_constraints

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_airflow_pin_provider_move_and_unpinned_package(
    tmp_path: Path, requirements_cache: Path
) -> None:
    path = tmp_path / "requirements.txt"
    path.write_text("apache-airflow==2.10.3\napache-airflow-providers-slack==7.3.0\npyfiglet\n")
    outcome = check_requirements_file(path, platform_constraints(None), requirements_cache)
    by_line = {f.line: f for f in outcome.findings}
    assert (by_line[1].rule, by_line[1].level) == ("MIG050", "blocker")
    assert "the platform provides Airflow" in by_line[1].fix
    assert (by_line[2].rule, by_line[2].level) == ("MIG052", "warning")
    assert "7.x line" in by_line[2].message
    assert by_line[2].fix.startswith("pin apache-airflow-providers-slack==9.")
    assert (by_line[3].rule, by_line[3].level) == ("MIG051", "info")
    assert "apache-airflow==" not in outcome.installable  # the import test skips that line
    assert outcome.resolved["apache-airflow-providers-slack"] == "7.3.0"
