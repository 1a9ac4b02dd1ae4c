"""The repository's foundation: the CLI answers and the shared moto server is real."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from airflow_platform import __version__

REPO = Path(__file__).resolve().parents[1]


def test_cli_reports_its_version() -> None:
    cli = Path(sys.executable).parent / "airflow-platform"
    out = subprocess.run([str(cli), "version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == __version__


def test_ci_runs_make_test_only() -> None:
    lines = [
        line
        for line in (REPO / ".ci" / "run").read_text().splitlines()
        if line and not line.startswith(("#", "set ", "cd "))
    ]
    assert lines == ["exec make test"]


def test_moto_server_speaks_s3(s3) -> None:
    s3.create_bucket(Bucket="foundation")
    s3.put_object(Bucket="foundation", Key="dags/a.py", Body=b"x = 1\n")
    body = s3.get_object(Bucket="foundation", Key="dags/a.py")["Body"].read()
    assert body == b"x = 1\n"
