"""Constraints and the essential packages a requirements.txt may not replace."""

from __future__ import annotations

import importlib.metadata
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from airflow_platform.bootstrap.inputs_key import is_under

# What the platform itself runs on: replacing any of these in a component breaks the
# scheduler, the Celery/SQS transport, the metadata database or the entrypoint. Every
# apache-airflow* distribution the image ships (core, task SDK, the providers the chart
# relies on) is essential too.
ESSENTIAL_PACKAGES: frozenset[str] = frozenset(
    canonicalize_name(name)
    for name in (
        "apache-airflow",
        "apache-airflow-core",
        "apache-airflow-task-sdk",
        "celery",
        "kombu",
        "billiard",
        "vine",
        "pycurl",
        "sqlalchemy",
        "alembic",
        "psycopg2-binary",
        "psycopg2",
        "pydantic",
        "pydantic-core",
        "fastapi",
        "starlette",
        "uvicorn",
        "boto3",
        "botocore",
        "structlog",
        "airflow-platform",
        "uv",
        "pip",
        "setuptools",
    )
)
ESSENTIAL_PREFIX = "apache-airflow"


def installed_distributions(exclude: tuple[Path, ...] = ()) -> dict[str, str]:
    """Distributions importable by this interpreter (first on sys.path wins), skipping
    anything under `exclude` (the requirements install itself).

    Read from the `name-version.dist-info` folder names, which is ~50x faster than
    parsing every METADATA file. inputs_key.installed_fingerprint hashes what this reads:
    keep the two in step.
    """
    excluded = tuple(os.path.realpath(path) for path in exclude)
    found: dict[str, str] = {}
    for entry in sys.path:
        if not entry or not os.path.isdir(entry):
            continue
        if is_under(os.path.realpath(entry), excluded):
            continue
        for item in sorted(os.listdir(entry)):
            if item.endswith(".dist-info"):
                stem = item[: -len(".dist-info")]
            elif item.endswith(".egg-info"):
                stem = item[: -len(".egg-info")]
            else:
                continue
            name, sep, version = stem.partition("-")
            version = version.split("-py", 1)[0]
            if not sep or not version:  # no version in the name: read the metadata
                meta = importlib.metadata.Distribution.at(os.path.join(entry, item)).metadata
                name, version = meta["Name"] or "", meta["Version"] or ""
            if name and version:
                found.setdefault(canonicalize_name(name), version)
    return found


def essential_versions(installed: dict[str, str]) -> dict[str, str]:
    return {
        name: version
        for name, version in installed.items()
        if name in ESSENTIAL_PACKAGES or name.startswith(ESSENTIAL_PREFIX)
    }


@dataclass(frozen=True)
class Constraints:
    text: str
    pins: dict[str, str]  # canonical name -> exact version
    source: str

    @classmethod
    def from_file(cls, path: Path) -> Constraints:
        if not path.is_file():
            raise FileNotFoundError(
                f"constraints file {path} does not exist (AIRFLOW_PLATFORM_CONSTRAINTS): "
                "point it at a file or unset it to use the installed versions"
            )
        text = path.read_text()
        pins: dict[str, str] = {}
        for raw in text.splitlines():
            line = raw.split("#", 1)[0].strip()
            if not line or line.startswith("-"):
                continue
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                continue
            exact = [s.version for s in requirement.specifier if s.operator in ("==", "===")]
            if exact:
                pins[canonicalize_name(requirement.name)] = exact[0]
        return cls(text, pins, str(path))

    @classmethod
    def from_installed(cls, installed: dict[str, str]) -> Constraints:
        lines = [f"{name}=={version}" for name, version in sorted(installed.items())]
        return cls("\n".join(lines) + "\n", dict(installed), "installed distributions")
