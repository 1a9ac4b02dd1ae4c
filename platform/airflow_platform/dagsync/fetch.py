"""Download one S3 object to a local file and prove it arrived whole.

botocore retries failed requests, but not a body that breaks off after the headers
arrived; this retries the whole object for that, and checks the byte count (and the MD5
when the ETag is one) before the file may be published.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    FlexibleChecksumError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from tenacity import (
    retry,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)
from urllib3.exceptions import ProtocolError

from airflow_platform.dagsync.limits import Admission
from airflow_platform.dagsync.manifest import clean_etag

CHUNK = 256 * 1024
BODY_ATTEMPTS = 3


class DownloadMismatch(IOError):
    """What was written does not match what S3 announced."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # truncated | corrupt


@dataclass(frozen=True)
class Fetched:
    key: str
    etag: str
    size: int
    version_id: str
    last_modified: float


def _md5_checkable(etag: str, response: dict[str, Any]) -> bool:
    # A plain ETag is the MD5 of the bytes unless SSE-KMS/SSE-C encrypted the object;
    # multipart ETags ("...-N") are not.
    sse = response.get("ServerSideEncryption")
    return len(etag) == 32 and "-" not in etag and sse in (None, "AES256")


def _get_once(
    client: Any,
    bucket: str,
    key: str,
    dest: Path,
    version_id: str,
    fsync: bool,
    unless: str,
    limit: Admission | None,
) -> Fetched | None:
    dest.unlink(missing_ok=True)
    params: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version_id:
        params["VersionId"] = version_id
    if unless:
        params["IfNoneMatch"] = f'"{unless}"'
    try:
        response = client.get_object(**params)
    except ClientError as exc:
        if unless and exc.response.get("Error", {}).get("Code") in ("304", "NotModified"):
            return None
        raise
    etag = clean_etag(response.get("ETag", ""))
    expected = int(response["ContentLength"])
    body = response["Body"]
    if limit is not None:
        try:
            limit.check(bucket, key, expected)  # the object may have grown since the listing
        except BaseException:
            body.close()
            raise
    digest = hashlib.md5(usedforsecurity=False) if _md5_checkable(etag, response) else None
    written = 0
    try:
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "wb") as out:
            while chunk := body.read(CHUNK):
                written += len(chunk)
                if written > expected:
                    break  # more than announced: never write past the checked size
                out.write(chunk)
                if digest is not None:
                    digest.update(chunk)
            out.flush()
            if fsync:
                os.fdatasync(out.fileno())
    finally:
        body.close()
    if written != expected:
        raise DownloadMismatch(
            "truncated", f"s3://{bucket}/{key}: got {written} bytes, {expected} announced"
        )
    if digest is not None and digest.hexdigest() != etag:
        raise DownloadMismatch(
            "corrupt", f"s3://{bucket}/{key}: content does not match its ETag {etag}"
        )
    modified = response.get("LastModified")
    return Fetched(
        key=key,
        etag=etag,
        size=written,
        version_id=str(response.get("VersionId") or ""),
        last_modified=modified.timestamp() if modified else 0.0,
    )


_retry_body = retry(
    retry=retry_if_exception_type(
        (
            DownloadMismatch,
            FlexibleChecksumError,
            IncompleteReadError,
            ResponseStreamingError,
            ConnectionClosedError,
            ReadTimeoutError,
            ProtocolError,
        )
    ),
    stop=stop_after_attempt(BODY_ATTEMPTS),
    wait=wait_exponential_jitter(multiplier=0.2, max=2.0),
    reraise=True,
)


@_retry_body
def _download(
    client: Any,
    bucket: str,
    key: str,
    dest: Path,
    version_id: str,
    fsync: bool,
    unless: str,
    limit: Admission | None,
) -> Fetched | None:
    try:
        return _get_once(client, bucket, key, dest, version_id, fsync, unless, limit)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise


def download(
    client: Any,
    bucket: str,
    key: str,
    dest: Path,
    *,
    version_id: str = "",
    fsync: bool = False,
    limit: Admission | None = None,
) -> Fetched:
    fetched = _download(client, bucket, key, dest, version_id, fsync, "", limit)
    assert fetched is not None  # only a conditional GET answers "not modified"
    return fetched


def download_if_changed(
    client: Any,
    bucket: str,
    key: str,
    dest: Path,
    etag: str,
    *,
    fsync: bool = False,
    limit: Admission | None = None,
) -> Fetched | None:
    """One conditional GET: None when the object still has `etag` (nothing written)."""
    return _download(client, bucket, key, dest, "", fsync, etag, limit)
