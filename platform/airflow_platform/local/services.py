"""The embedded services: PostgreSQL (Aurora), moto (S3 + SQS) and OpenBao (Vault API).

Each runs on 127.0.0.1 on a port chosen at start, under the supervisor, and is seeded
idempotently: re-running `up` against a live service changes nothing.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from airflow_platform.local.http import request, status_of

# PostgreSQL has a module of its own; its names stay importable from here.
from airflow_platform.local.postgres import (  # noqa: F401
    RESULTS_ROLE,
    Unprivileged,
    ensure_results_role,
    pg_bin,
    start_postgres,
)
from airflow_platform.local.supervisor import Supervisor
from airflow_platform.local.waiting import ServiceError, poll

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


def queue_url(endpoint: str, name: str) -> str:
    """The URL SQS (moto) gives queue `name` at `endpoint`."""
    return f"{endpoint}/{ACCOUNT_ID}/{name}"


def aws_clients(endpoint: str):
    import boto3

    session = boto3.Session(
        aws_access_key_id=AWS_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=AWS_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=REGION,
    )
    return session.client("s3", endpoint_url=endpoint), session.client("sqs", endpoint_url=endpoint)


def set_visibility_timeout(endpoint: str, queue_url: str, seconds: int) -> None:
    """The Celery queue's VisibilityTimeout, as the chart renders it (celery.visibilityTimeout):
    SQS applies the queue's attribute to a predefined queue, not the transport option."""
    _, sqs = aws_clients(endpoint)
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"VisibilityTimeout": str(seconds)})


def seed_aws(
    endpoint: str, worker_queues: Iterable[str] = (), visibility_timeout: int = 43200
) -> AwsResources:
    """The DAG bucket (versioned, public access blocked, events to SQS) and the queues; the
    Celery queue's visibility timeout at the chart's default until `up` sets the rendered
    one (set_visibility_timeout). Each extra worker queue (workers.queues) gets an SQS queue
    of its own."""
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
    set_visibility_timeout(endpoint, celery_url, visibility_timeout)
    worker_urls = {
        q: sqs.create_queue(QueueName=f"{CELERY_QUEUE}-{q}")["QueueUrl"] for q in worker_queues
    }
    for url in worker_urls.values():
        set_visibility_timeout(endpoint, url, visibility_timeout)
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


def put_files(endpoint: str, bucket: str, prefix: str, paths: list[Path]) -> list[str]:
    """Upload files (folders: every file under them, hierarchy kept) under `prefix`."""
    s3, _ = aws_clients(endpoint)
    keys: list[str] = []
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            rel = file.relative_to(path).as_posix() if path.is_dir() else file.name
            key = prefix + (f"{path.name}/{rel}" if path.is_dir() else rel)
            s3.upload_file(str(file), bucket, key)
            keys.append(key)
    return keys


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
    mount: str,
    connections_path: str,
    variables_path: str,
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
