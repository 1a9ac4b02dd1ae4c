"""`airflow-platform dagsync`: every flag is also an environment variable (the chart sets
the variables). Exit codes: 0 synced (or stopped cleanly), 1 sync failed, 2 bad
configuration, 3 bucket refused by --strict."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from airflow_platform.dagsync.settings import (
    DEFAULT_DAG_BUNDLE,
    DEFAULT_EVENT_HEARTBEAT,
    DEFAULT_EVENT_ORPHAN_AFTER,
    DEFAULT_EVENT_QUEUE_PREFIX,
    DEFAULT_MAX_FILES,
    DEFAULT_MAX_OBJECT_BYTES,
    DEFAULT_MAX_SCRIPT_BYTES,
    DEFAULT_MAX_TOTAL_BYTES,
    DEFAULT_PARALLELISM,
    DEFAULT_PLUGINS_MAX_BYTES,
    DEFAULT_PLUGINS_MAX_ENTRIES,
    SettingsError,
    build_settings,
)
from airflow_platform.paths import DEFAULT_SYNC_ROOT, SYNC_ROOT_ENV

EXIT_SYNC_FAILED = 1
EXIT_BAD_CONFIG = 2
EXIT_STRICT_REFUSED = 3


def _fail(code: int, message: str) -> None:
    typer.echo(f"dagsync: {message}", err=True)
    raise typer.Exit(code)


def dagsync(
    bucket: Annotated[str, typer.Option(envvar="DAGSYNC_BUCKET", help="Source S3 bucket name.")],
    dags_prefix: Annotated[
        str,
        typer.Option(
            envvar="DAGSYNC_DAGS_PREFIX", help="Folder of DAGs in the bucket; '' = whole bucket."
        ),
    ] = "dags/",
    root: Annotated[
        Path, typer.Option(envvar=SYNC_ROOT_ENV, help="Sync root shared with Airflow.")
    ] = DEFAULT_SYNC_ROOT,
    interval: Annotated[
        float, typer.Option(envvar="DAGSYNC_INTERVAL", help="Seconds between full reconciles.")
    ] = 30.0,
    event_queue_url: Annotated[
        str,
        typer.Option(
            envvar="DAGSYNC_EVENT_QUEUE_URL",
            help="One SQS queue with the bucket's S3 events. Each event wakes ONE consumer: "
            "for a single dagsync only; several pods want --event-topic-arn.",
        ),
    ] = "",
    event_topic_arn: Annotated[
        str,
        typer.Option(
            envvar="DAGSYNC_EVENT_TOPIC_ARN",
            help="SNS topic with the bucket's S3 events: this process subscribes a queue of "
            "its own, so every pod hears every event.",
        ),
    ] = "",
    event_queue_prefix: Annotated[
        str,
        typer.Option(
            envvar="DAGSYNC_EVENT_QUEUE_PREFIX",
            help="Name prefix of the per-process queues (scope IAM to it).",
        ),
    ] = DEFAULT_EVENT_QUEUE_PREFIX,
    event_heartbeat: Annotated[
        float,
        typer.Option(
            envvar="DAGSYNC_EVENT_HEARTBEAT", help="Seconds between heartbeats of the own queue."
        ),
    ] = DEFAULT_EVENT_HEARTBEAT,
    event_orphan_after: Annotated[
        float,
        typer.Option(
            envvar="DAGSYNC_EVENT_ORPHAN_AFTER",
            help="A queue whose heartbeat is older than this is removed by any sidecar.",
        ),
    ] = DEFAULT_EVENT_ORPHAN_AFTER,
    pod_name: Annotated[
        str,
        typer.Option(envvar="DAGSYNC_POD_NAME", help="Owner tag of the own queue; '' = hostname."),
    ] = "",
    pod_uid: Annotated[
        str,
        typer.Option(
            envvar="DAGSYNC_POD_UID",
            help="Pod UID: queues of earlier containers of this pod are removed at start.",
        ),
    ] = "",
    plugins_key: Annotated[str, typer.Option(envvar="DAGSYNC_PLUGINS_KEY")] = "",
    plugins_version: Annotated[str, typer.Option(envvar="DAGSYNC_PLUGINS_VERSION")] = "",
    requirements_key: Annotated[str, typer.Option(envvar="DAGSYNC_REQUIREMENTS_KEY")] = "",
    requirements_version: Annotated[str, typer.Option(envvar="DAGSYNC_REQUIREMENTS_VERSION")] = "",
    startup_key: Annotated[str, typer.Option(envvar="DAGSYNC_STARTUP_KEY")] = "",
    startup_version: Annotated[str, typer.Option(envvar="DAGSYNC_STARTUP_VERSION")] = "",
    strict: Annotated[
        bool,
        typer.Option(
            envvar="DAGSYNC_STRICT", help="Refuse a bucket without versioning/public access block."
        ),
    ] = False,
    once: Annotated[
        bool, typer.Option("--once", help="Sync once and exit (init container).")
    ] = False,
    health_host: Annotated[
        str,
        typer.Option(
            envvar="DAGSYNC_HEALTH_HOST",
            help="Address of the health/metrics server (the pod IP in a pod).",
        ),
    ] = "127.0.0.1",
    health_port: Annotated[
        int, typer.Option(envvar="DAGSYNC_HEALTH_PORT", help="/healthz /readyz /metrics; 0 = off.")
    ] = 8099,
    parallelism: Annotated[
        int, typer.Option(envvar="DAGSYNC_PARALLELISM", help="Concurrent downloads.")
    ] = DEFAULT_PARALLELISM,
    plugins_max_entries: Annotated[
        int, typer.Option(envvar="DAGSYNC_PLUGINS_MAX_ENTRIES")
    ] = DEFAULT_PLUGINS_MAX_ENTRIES,
    plugins_max_bytes: Annotated[
        int, typer.Option(envvar="DAGSYNC_PLUGINS_MAX_BYTES")
    ] = DEFAULT_PLUGINS_MAX_BYTES,
    max_object_bytes: Annotated[
        int,
        typer.Option(
            envvar="DAGSYNC_MAX_OBJECT_BYTES",
            help="Largest object under the DAGs prefix; a larger one refuses the whole sync.",
        ),
    ] = DEFAULT_MAX_OBJECT_BYTES,
    max_total_bytes: Annotated[
        int,
        typer.Option(envvar="DAGSYNC_MAX_TOTAL_BYTES", help="Largest DAGs folder, in bytes."),
    ] = DEFAULT_MAX_TOTAL_BYTES,
    max_files: Annotated[
        int, typer.Option(envvar="DAGSYNC_MAX_FILES", help="Most files in the DAGs folder.")
    ] = DEFAULT_MAX_FILES,
    max_script_bytes: Annotated[
        int,
        typer.Option(
            envvar="DAGSYNC_MAX_SCRIPT_BYTES", help="Largest requirements.txt and startup.sh."
        ),
    ] = DEFAULT_MAX_SCRIPT_BYTES,
    database_url: Annotated[
        str,
        typer.Option(
            envvar="DAGSYNC_DATABASE_URL",
            show_default=False,
            help="Airflow's metadata database: after each sync, ask the DAG processor to parse "
            "the changed files at once (the dag-processor pod's sidecar only).",
        ),
    ] = "",
    dag_bundle: Annotated[
        str,
        typer.Option(envvar="DAGSYNC_DAG_BUNDLE", help="The DAG bundle the DAGs folder is."),
    ] = DEFAULT_DAG_BUNDLE,
) -> None:
    """Mirror s3://BUCKET/DAGS_PREFIX (plus plugins.zip, requirements.txt, startup.sh)
    into the sync root, atomically and incrementally."""
    try:
        settings = build_settings(**{k: v for k, v in locals().items()})
    except SettingsError as exc:
        _fail(EXIT_BAD_CONFIG, str(exc))
        return
    # Heavy imports (boto3) only once the arguments are known to be good.
    from airflow_platform.dagsync.dags import Cancelled
    from airflow_platform.dagsync.fanout import EventSetupError
    from airflow_platform.dagsync.service import (
        BucketRulesRefused,
        DagSync,
        install_signal_handlers,
    )
    from airflow_platform.dagsync.telemetry import setup_logging

    setup_logging()
    import os

    os.umask(0o022)  # Airflow runs as another user and reads the tree read-only
    try:
        sync = DagSync(settings)
    except Exception as exc:
        _fail(EXIT_BAD_CONFIG, f"cannot create the S3 client: {exc}")
        return
    install_signal_handlers(sync)
    try:
        if once:
            result = sync.run_once()
            if not result.ok:
                _fail(EXIT_SYNC_FAILED, f"sync failed: {result.summary()}")
            typer.echo(f"dagsync: {result.summary()}", err=True)
        else:
            sync.run_forever()
    except BucketRulesRefused as exc:
        _fail(EXIT_STRICT_REFUSED, str(exc))
    except EventSetupError as exc:
        _fail(EXIT_BAD_CONFIG, f"S3 events: {exc}")
    except Cancelled:
        _fail(EXIT_SYNC_FAILED, "stopped before the sync finished; nothing partial was published")
    except OSError as exc:
        _fail(EXIT_SYNC_FAILED, f"cannot use the sync root {settings.root}: {exc}")
    finally:
        sync.close()
    sys.stdout.flush()


def register(app: typer.Typer) -> None:
    app.command(name="dagsync")(dagsync)
