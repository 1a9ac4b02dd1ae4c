"""Task code trying to read the platform's secrets from where it runs: a worker.

It collects every environment it can read (its own os.environ and /proc/self/environ, and
/proc/<pid>/environ of each ancestor that is part of the worker: the task supervisor, the
Celery pool process, the Celery worker) and the files under the secret mount paths and in its home
directory, and writes all of it to
s3://<example_results_bucket>/results/<dag_id>/<run_id>.json for the test to inspect. The
DAG id is this file's name.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pendulum
from airflow.sdk import Variable, dag, task

DAG_ID = Path(__file__).stem
# Secret volumes a pod could carry, and where Airflow keeps files of its own.
SECRET_PATHS = ("/var/run/secrets", "/run/secrets", "/etc/airflow", "/opt/airflow/secrets")
MAX_FILE = 64 * 1024


def _environ_of(pid: str) -> dict[str, str] | str:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError as exc:
        return f"unreadable: {exc.__class__.__name__}"
    pairs = (item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if item)
    return {p[0]: p[1] for p in pairs if len(p) == 2}


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def _parent(pid: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("PPid:"):
            return line.split()[1]
    return "0"


def _ancestors() -> list[dict[str, object]]:
    """The worker's own processes above this task, up to the Celery worker itself."""
    found: list[dict[str, object]] = []
    pid = _parent("self")
    while pid not in ("0", "1"):
        cmdline = _cmdline(pid)
        if "airflow" not in cmdline and "celery" not in cmdline:
            break
        found.append({"pid": pid, "cmdline": cmdline, "environ": _environ_of(pid)})
        pid = _parent(pid)
    return found


def _files(roots: list[str], pattern: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for root in roots:
        for path in Path(root).glob(pattern) if Path(root).is_dir() else []:
            try:
                if path.is_file() and path.stat().st_size <= MAX_FILE:
                    found[str(path)] = path.read_text(errors="replace")
            except OSError:
                continue
    return found


@dag(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["e2e", "security"],
)
def secret_probe():
    @task
    def probe(dag_run=None) -> str:
        import boto3

        home = os.environ.get("HOME", "")
        report = {
            "os_environ": dict(os.environ),
            "proc_self_environ": _environ_of("self"),
            "ancestors": _ancestors(),
            # Every file under the secret paths; the files directly in the home directory.
            "files": {**_files(list(SECRET_PATHS), "**/*"), **_files([home], "*")},
            "scanned": [*SECRET_PATHS, home],
        }
        bucket = Variable.get("example_results_bucket")
        key = f"results/{DAG_ID}/{dag_run.run_id}.json"
        boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=json.dumps(report))
        return f"s3://{bucket}/{key}"

    probe()


secret_probe()
