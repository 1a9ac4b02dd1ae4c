"""The `airflow-platform dagsync` command as the chart runs it: exit codes of `--once`,
--strict, the loop's readiness and metrics endpoints, SIGTERM, and the S3-event path."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_platform.paths import SyncLayout
from airflow_platform.procs import tail, wait_until

from .support import CLI, cli_env, metric, new_bucket, start_loop

pytestmark = pytest.mark.integration


def run_once(endpoint: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, "dagsync", "--once", "--health-port", "0", *args],
        env=cli_env(endpoint, **env),
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_once_succeeds_and_says_what_it_did(s3c: Any, aws: str, tmp_path: Path) -> None:
    bucket = new_bucket(s3c)
    s3c.put_object(Bucket=bucket, Key="dags/a.py", Body=b"a\n")
    done = run_once(aws, "--bucket", bucket, "--root", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "dags published" in done.stderr and "1 objects" in done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    [sync_line] = [line for line in lines if line.get("event") == "sync"]
    assert sync_line["added"] == 1 and sync_line["added_keys"] == ["a.py"]
    assert (SyncLayout(tmp_path).dags / "a.py").read_bytes() == b"a\n"
    assert SyncLayout(tmp_path).ready_file.exists()


def test_once_fails_without_publishing(aws: str, tmp_path: Path) -> None:
    done = run_once(aws, "--bucket", f"missing-{uuid.uuid4().hex[:8]}", "--root", str(tmp_path))
    assert done.returncode == 1
    assert "sync failed" in done.stderr and "NoSuchBucket" in done.stderr
    assert not SyncLayout(tmp_path).ready_file.exists()
    assert not SyncLayout(tmp_path).dags.exists()


def test_bad_configuration_names_the_variable(aws: str, tmp_path: Path) -> None:
    done = run_once(aws, "--root", str(tmp_path), DAGSYNC_BUCKET="s3://my-bucket/dags")
    assert done.returncode == 2
    assert "DAGSYNC_BUCKET" in done.stderr and "--dags-prefix" in done.stderr
    done = run_once(aws, "--bucket", "ok-bucket", "--plugins-version", "abc")
    assert done.returncode == 2 and "DAGSYNC_PLUGINS_KEY" in done.stderr


def test_strict_refuses_a_non_compliant_bucket(s3c: Any, aws: str, tmp_path: Path) -> None:
    bucket = new_bucket(s3c, compliant=False)
    s3c.put_object(Bucket=bucket, Key="dags/a.py", Body=b"a\n")
    refused = run_once(aws, "--bucket", bucket, "--root", str(tmp_path), DAGSYNC_STRICT="true")
    assert refused.returncode == 3
    assert "versioning" in refused.stderr and "put-bucket-versioning" in refused.stderr
    assert "public access block" in refused.stderr and "put-public-access-block" in refused.stderr
    assert not SyncLayout(tmp_path).dags.exists()
    warned = run_once(aws, "--bucket", bucket, "--root", str(tmp_path))
    assert warned.returncode == 0
    warnings = [json.loads(x) for x in warned.stdout.splitlines() if '"bucket_rule"' in x]
    assert len(warnings) == 2 and all(w["level"] == "warning" for w in warnings)


def test_loop_readiness_metrics_and_clean_stop(s3c: Any, aws: str, tmp_path: Path) -> None:
    bucket = f"late-{uuid.uuid4().hex[:8]}"
    proc, url = start_loop(tmp_path, aws, "--bucket", bucket, "--interval", "3600")
    try:
        # The bucket does not exist yet: alive, not ready, errors counted.
        wait_until(
            lambda: (
                metric(httpx.get(f"{url}/metrics").text, "dagsync_errors_total", kind="not_found")
                >= 1
            ),
            60,
            "a failed first sync",
        )
        assert httpx.get(f"{url}/readyz").status_code == 503
        assert not (tmp_path / "root" / ".ready").exists()
        s3c.create_bucket(Bucket=bucket)
        s3c.put_object(Bucket=bucket, Key="dags/a.py", Body=b"a\n" * 100)
        # Retried after a short backoff, well before the hour-long interval.
        wait_until(lambda: httpx.get(f"{url}/readyz").status_code == 200, 90, "readiness")
        assert (tmp_path / "root" / ".ready").exists()
        text = httpx.get(f"{url}/metrics").text
        assert metric(text, "dagsync_ready") == 1
        assert metric(text, "dagsync_objects") == 1
        assert metric(text, "dagsync_bytes") == 200
        assert metric(text, "dagsync_last_success_timestamp_seconds") > 1e9
        assert metric(text, "dagsync_syncs_total", result="success", trigger="reconcile") == 1
        assert metric(text, "dagsync_syncs_total", result="failure", trigger="reconcile") >= 1
        assert 0 <= metric(text, "dagsync_lag_seconds") < 3600
        assert metric(text, "dagsync_sync_duration_seconds_count", trigger="reconcile") >= 2
        proc.stop()
        assert proc.proc is not None and proc.proc.returncode == 0, tail(proc.log_path)
        assert "dagsync stopped" in proc.log_path.read_text()
    finally:
        proc.stop()


def test_s3_event_lands_without_waiting_for_the_reconcile(
    s3c: Any, sqsc: Any, aws: str, tmp_path: Path
) -> None:
    # moto sends no ObjectRemoved event for a delete marker (versioned bucket); S3 does
    # (ObjectRemoved:DeleteMarkerCreated). An unversioned bucket shows the delete path.
    bucket = new_bucket(s3c, compliant=False)
    queue = sqsc.create_queue(QueueName=f"events-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqsc.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    s3c.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {"QueueArn": arn, "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}
            ]
        },
    )
    s3c.put_object(Bucket=bucket, Key="dags/first.py", Body=b"1\n")
    proc, url = start_loop(
        tmp_path, aws, "--bucket", bucket, "--interval", "3600", "--event-queue-url", queue
    )
    dags = SyncLayout(tmp_path / "root").dags
    try:
        wait_until(lambda: httpx.get(f"{url}/readyz").status_code == 200, 90, "readiness")
        s3c.put_object(Bucket=bucket, Key="dags/team/ünï code.py", Body=b"new\n")
        wait_until(lambda: (dags / "team/ünï code.py").exists(), 60, "the uploaded DAG locally")
        assert (dags / "team/ünï code.py").read_bytes() == b"new\n"
        s3c.delete_object(Bucket=bucket, Key="dags/first.py")
        wait_until(lambda: not (dags / "first.py").exists(), 60, "the deleted DAG to go")
        sqsc.send_message(QueueUrl=queue, MessageBody="{not json")
        sqsc.send_message(QueueUrl=queue, MessageBody=json.dumps({"Records": [{"nope": 1}]}))
        wait_until(
            lambda: (
                metric(
                    httpx.get(f"{url}/metrics").text, "dagsync_errors_total", kind="event_malformed"
                )
                == 2
            ),
            60,
            "malformed messages counted",
        )

        def queue_empty() -> bool:
            attrs = sqsc.get_queue_attributes(
                QueueUrl=queue,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
            return attrs == {
                "ApproximateNumberOfMessages": "0",
                "ApproximateNumberOfMessagesNotVisible": "0",
            }

        # Test event, real events and malformed ones: all deleted once handled.
        wait_until(queue_empty, 60, "the event queue to drain")
        text = httpx.get(f"{url}/metrics").text
        assert metric(text, "dagsync_syncs_total", result="success", trigger="event") >= 2
        assert metric(text, "dagsync_syncs_total", result="success", trigger="reconcile") == 1
    finally:
        proc.stop()
