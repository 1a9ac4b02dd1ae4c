"""Fixtures of the ops tests: a throwaway PostgreSQL (the scaling tier's helper)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scaling"))

from embedded_pg import EmbeddedPostgres


@pytest.fixture(scope="module")
def postgres() -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres().start()
    try:
        yield server
    finally:
        server.stop()
