"""boto3 clients shared by every download thread, and error classification for metrics.

Endpoint and region come from boto3's own configuration (AWS_ENDPOINT_URL, AWS_REGION),
so the same code talks to S3 in a pod and to a local S3-compatible server in tests.
"""

from __future__ import annotations

import errno
import os
import re
from datetime import datetime
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    FlexibleChecksumError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from botocore.utils import parse_timestamp as botocore_parse_timestamp

# botocore's standard mode retries throttling (503 SlowDown, 429), 5xx and connection
# errors with exponential backoff and full jitter; the per-object download adds its own
# retry for bodies cut half-way, which botocore cannot retry once streaming started.
DEFAULT_MAX_ATTEMPTS = 5


def _retries() -> dict[str, Any]:
    # AWS_MAX_ATTEMPTS / AWS_RETRY_MODE keep working as boto3 documents them.
    attempts = int(os.environ.get("AWS_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS))
    mode = os.environ.get("AWS_RETRY_MODE", "standard")
    return {"mode": mode, "total_max_attempts": max(1, attempts)}


def parse_timestamp(value: str) -> datetime:
    """S3 sends ISO 8601 in listings; fall back to botocore for headers (RFC 822)."""
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return botocore_parse_timestamp(value)  # type: ignore[no-any-return]
    return parsed if parsed.tzinfo else botocore_parse_timestamp(value)


def _session() -> boto3.session.Session:
    # botocore parses every timestamp with dateutil (~50 us each): a quarter of the time
    # of listing 5,000 keys. Its parser factory takes a faster parser per session.
    core = botocore.session.get_session()
    core.get_component("response_parser_factory").set_parser_defaults(
        timestamp_parser=parse_timestamp
    )
    return boto3.session.Session(botocore_session=core)


def s3_client(parallelism: int) -> Any:
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    config = Config(
        retries=_retries(),  # type: ignore[arg-type]
        # One pooled connection per download thread plus room for listing and HEADs.
        max_pool_connections=parallelism + 4,
        connect_timeout=10,
        read_timeout=60,
        tcp_keepalive=True,
    )
    return _session().client("s3", region_name=region, config=config)


def sqs_client(queue_url: str = "", fallback_region: str | None = None) -> Any:
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        # https://sqs.<region>.amazonaws.com/<account>/<name> names its region.
        match = re.match(r"https://sqs\.([a-z0-9-]+)\.amazonaws\.com", queue_url)
        region = match.group(1) if match else fallback_region
    # The long poll holds the connection for up to 20 s: the read timeout must exceed it.
    config = Config(retries=_retries(), connect_timeout=10, read_timeout=40)  # type: ignore[arg-type]
    return boto3.session.Session().client("sqs", region_name=region, config=config)


def sns_client(region: str) -> Any:
    """SNS calls go to the topic's own region (the one in its ARN)."""
    config = Config(retries=_retries(), connect_timeout=10, read_timeout=30)  # type: ignore[arg-type]
    return boto3.session.Session().client("sns", region_name=region, config=config)


# SQS names a missing queue differently in its JSON and query protocols.
_MISSING_QUEUE = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}


def is_missing_queue(exc: BaseException) -> bool:
    if not isinstance(exc, ClientError):
        return False
    error = exc.response.get("Error", {})
    return bool({error.get("Code"), error.get("QueryErrorCode")} & _MISSING_QUEUE)


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def is_not_found(exc: BaseException) -> bool:
    return error_code(exc) in {"404", "NoSuchKey", "NotFound", "NoSuchVersion"}


def error_kind(exc: BaseException) -> str:
    """A small, stable label for the errors metric."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return "disk_full"
    if isinstance(exc, (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError)):
        return "connection"
    if isinstance(exc, (IncompleteReadError, ResponseStreamingError)):
        return "truncated"
    if isinstance(exc, FlexibleChecksumError):
        return "corrupt"
    kind = getattr(exc, "kind", None)
    if isinstance(kind, str):
        return kind
    if isinstance(exc, ClientError):
        code = error_code(exc)
        if code in {"SlowDown", "Throttling", "ThrottlingException", "TooManyRequests", "429"}:
            return "throttled"
        if code in {"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"}:
            return "access_denied"
        if is_not_found(exc) or code == "NoSuchBucket":
            return "not_found"
        return "s3_error"
    if isinstance(exc, BotoCoreError):
        return "s3_error"
    if isinstance(exc, OSError):
        return "filesystem"
    return type(exc).__name__.lower()
