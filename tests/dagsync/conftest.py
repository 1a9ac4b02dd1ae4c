"""Fixtures for dagsync: buckets on the shared moto server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from .support import AWS_TEST_ENV, new_bucket


@pytest.fixture(scope="module")
def aws(moto_server: str) -> Iterator[str]:
    """Module-wide AWS environment pointing at the shared moto server."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {**AWS_TEST_ENV, "AWS_ENDPOINT_URL": moto_server}.items():
            mp.setenv(key, value)
        mp.delenv("AWS_PROFILE", raising=False)
        yield moto_server


@pytest.fixture(scope="module")
def s3c(aws: str) -> Any:
    return boto3.client("s3", endpoint_url=aws)


@pytest.fixture(scope="module")
def sqsc(aws: str) -> Any:
    return boto3.client("sqs", endpoint_url=aws)


@pytest.fixture
def bucket(s3c: Any) -> str:
    return new_bucket(s3c)


@pytest.fixture(scope="module")
def snsc(aws: str) -> Any:
    return boto3.client("sns", endpoint_url=aws)
