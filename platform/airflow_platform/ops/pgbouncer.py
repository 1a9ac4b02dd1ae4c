"""PgBouncer's runtime files, written at pod start from the database Secret's URL (passed in the
environment, never rendered): pgbouncer.ini (the [databases] entry, then the chart's
ConfigMap template holding the [pgbouncer] settings) and its auth_file.

They live in a memory-backed emptyDir only the PgBouncer pod mounts.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import make_url

CONFIG_FILE = "pgbouncer.ini"
USERLIST_FILE = "userlist.txt"


class PgBouncerConfigError(ValueError):
    pass


def _quoted(value: str) -> str:
    """A userlist.txt field: double quotes, an inner quote doubled."""
    return '"' + value.replace('"', '""') + '"'


def runtime_files(database_url: str, template: str) -> dict[str, str]:
    """{file name: content} for a SQLAlchemy or libpq URL postgresql://user:pass@host:port/db
    and the [pgbouncer] section `template`."""
    try:
        url = make_url(database_url)
    except Exception as exc:  # sqlalchemy raises ArgumentError with the URL in its message
        raise PgBouncerConfigError("the database URL cannot be parsed") from exc
    missing = [
        part
        for part, value in (("user", url.username), ("password", url.password), ("host", url.host))
        if not value
    ]
    if not url.database:
        missing.append("database")
    if missing:
        raise PgBouncerConfigError(f"the database URL lacks its {', '.join(missing)}")
    for part in (url.host, url.database):
        if any(c in part for c in " '=\n"):
            raise PgBouncerConfigError(
                "the database URL's host or database name has spaces or quotes"
            )
    port = url.port or 5432
    return {
        # Clients name the same database as through a direct connection.
        CONFIG_FILE: (
            f"[databases]\n{url.database} = host={url.host} port={port} dbname={url.database}\n\n"
            + template
        ),
        USERLIST_FILE: f"{_quoted(str(url.username))} {_quoted(str(url.password))}\n",
    }


def write_runtime_files(database_url: str, template: Path, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in runtime_files(database_url, template.read_text()).items():
        path = out / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
        written.append(path)
    return written
