"""PgBouncer's runtime files come from the database URL at pod start, not from a rendering."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from airflow_platform.ops.pgbouncer import (
    PgBouncerConfigError,
    runtime_files,
    write_runtime_files,
)

TEMPLATE = "[pgbouncer]\nlisten_port = 6432\n"


def test_the_database_entry_and_credentials_come_from_the_url() -> None:
    files = runtime_files(
        "postgresql+psycopg2://airflow:s3cr%22et@db.internal:5433/airflow", TEMPLATE
    )
    assert files["pgbouncer.ini"] == (
        "[databases]\nairflow = host=db.internal port=5433 dbname=airflow\n\n" + TEMPLATE
    )
    # The password's quote is doubled, as auth_file requires.
    assert files["userlist.txt"] == '"airflow" "s3cr""et"\n'


def test_the_default_port_is_postgres() -> None:
    files = runtime_files("postgresql://u:p@db/airflow", TEMPLATE)
    assert "host=db port=5432 dbname=airflow" in files["pgbouncer.ini"]


@pytest.mark.parametrize(
    ("url", "missing"),
    [
        ("postgresql://db/airflow", "user, password"),
        ("postgresql://u:p@db", "database"),
        ("postgresql://u@db/airflow", "password"),
    ],
)
def test_an_incomplete_url_is_refused_without_echoing_it(url: str, missing: str) -> None:
    with pytest.raises(PgBouncerConfigError, match=missing) as refused:
        runtime_files(url, TEMPLATE)
    assert url not in str(refused.value)


def test_the_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    template = tmp_path / "template.ini"
    template.write_text(TEMPLATE)
    for path in write_runtime_files("postgresql://u:p@db/airflow", template, tmp_path / "run"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
