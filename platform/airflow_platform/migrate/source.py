"""The MWAA environment as it is: its DAGs folder and its three artifacts, read from the
bucket (or a local folder) into a private working copy. The bucket is only read."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

ARTIFACTS = {
    "plugins": ("PluginsS3Path", "PluginsS3ObjectVersion", "plugins.zip"),
    "requirements": ("RequirementsS3Path", "RequirementsS3ObjectVersion", "requirements.txt"),
    "startup": ("StartupScriptS3Path", "StartupScriptS3ObjectVersion", "startup.sh"),
}
PARALLELISM = 16


class SourceError(RuntimeError):
    """The environment cannot be read; the message names what and how to fix it."""


@dataclass
class Inputs:
    origin: str  # s3://bucket/dags/ or the local folder
    dags: Path  # the working copy of the DAGs folder
    artifacts: dict[str, Path | None] = field(default_factory=dict)
    artifact_names: dict[str, str] = field(default_factory=dict)  # where each came from
    environment: dict[str, Any] = field(default_factory=dict)  # get-environment's inner object
    notes: list[str] = field(default_factory=list)


def load_environment_json(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except OSError as exc:
        raise SourceError(f"--environment {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise SourceError(
            f"--environment {path}: not JSON ({exc}); pass the output of "
            "`aws mwaa get-environment --name NAME`"
        ) from None
    if isinstance(document, dict) and isinstance(document.get("Environment"), dict):
        return dict(document["Environment"])
    if isinstance(document, dict) and "Name" in document:
        return document
    raise SourceError(
        f"--environment {path}: no Environment object; pass the output of "
        "`aws mwaa get-environment --name NAME`"
    )


def source_from_environment(env: dict[str, Any]) -> str:
    arn = str(env.get("SourceBucketArn") or "")
    dags = str(env.get("DagS3Path") or "dags").strip("/")
    if not arn.startswith("arn:"):
        raise SourceError(
            "give the DAGs location (s3://bucket/dags or a folder): the environment JSON has "
            "no SourceBucketArn"
        )
    return f"s3://{arn.rsplit(':', 1)[-1]}/{dags}"


def parse_s3_url(url: str) -> tuple[str, str]:
    rest = url.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise SourceError(f"{url!r} names no bucket; write s3://BUCKET/dags")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


def _default_key(dags_prefix: str, name: str) -> str:
    parent = str(PurePosixPath(dags_prefix.rstrip("/")).parent) if dags_prefix else "."
    return name if parent in (".", "") else f"{parent}/{name}"


def _artifact_choice(
    what: str, given: str | None, env: dict[str, Any], default: str
) -> tuple[str, str, bool]:
    """(key or path, version, explicitly asked for); "" means: do not check it."""
    if given is not None:
        return ("" if given.lower() in ("", "none", "-") else given), "", True
    field_name, version_field, _ = ARTIFACTS[what]
    if env.get(field_name):
        return str(env[field_name]), str(env.get(version_field) or ""), True
    return default, "", False


def read_environment(
    source: str,
    work: Path,
    *,
    plugins: str | None = None,
    requirements: str | None = None,
    startup: str | None = None,
    environment: dict[str, Any] | None = None,
) -> Inputs:
    env = environment or {}
    given = {"plugins": plugins, "requirements": requirements, "startup": startup}
    if source.startswith("s3://"):
        return _read_bucket(source, work, given, env)
    return _read_folder(Path(source), work, given, env)


def _read_folder(
    folder: Path, work: Path, given: dict[str, str | None], env: dict[str, Any]
) -> Inputs:
    if not folder.is_dir():
        raise SourceError(f"{folder} is not a folder; give the DAGs folder or s3://BUCKET/PREFIX")
    import shutil

    dags = work / "dags"
    shutil.copytree(folder, dags, symlinks=False, dirs_exist_ok=False)
    inputs = Inputs(origin=str(folder), dags=dags, environment=env)
    for what, (_, _, name) in ARTIFACTS.items():
        choice, _, explicit = _artifact_choice(what, given[what], {}, str(folder.parent / name))
        if not choice:
            inputs.artifacts[what] = None
            continue
        path = Path(choice)
        if not path.is_file():
            if explicit:
                raise SourceError(f"--{what} {path}: no such file")
            inputs.artifacts[what] = None
            inputs.notes.append(f"no {name} next to {folder}: not checked")
            continue
        target = work / name
        shutil.copyfile(path, target)
        inputs.artifacts[what] = target
        inputs.artifact_names[what] = str(path)
    return inputs


def _s3_problem(exc: BaseException, what: str) -> SourceError:
    from airflow_platform.dagsync.aws import error_code, error_kind

    kind = error_kind(exc)
    hints = {
        "access_denied": "the credentials may not read it: grant s3:ListBucket and "
        "s3:GetObject (and s3:GetObjectVersion for pinned versions)",
        "not_found": "check the bucket name, the key and the version",
        "connection": "check the network, AWS_REGION and AWS_ENDPOINT_URL",
    }
    code = error_code(exc) or type(exc).__name__
    return SourceError(f"cannot read {what} ({code}): {hints.get(kind, exc)}")


def _read_bucket(url: str, work: Path, given: dict[str, str | None], env: dict[str, Any]) -> Inputs:
    from botocore.exceptions import BotoCoreError, ClientError

    from airflow_platform.dagsync.aws import is_not_found, s3_client
    from airflow_platform.dagsync.fetch import download

    bucket, prefix = parse_s3_url(url)
    client = s3_client(PARALLELISM)
    dags = work / "dags"
    dags.mkdir(parents=True)
    keys: list[str] = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [o["Key"] for o in page.get("Contents", []) if not o["Key"].endswith("/")]
    except (ClientError, BotoCoreError) as exc:
        raise _s3_problem(exc, f"s3://{bucket}/{prefix}") from None
    inputs = Inputs(origin=f"s3://{bucket}/{prefix}", dags=dags, environment=env)
    if not keys:
        inputs.notes.append(f"s3://{bucket}/{prefix} holds no objects")

    def fetch(key: str) -> None:
        rel = key[len(prefix) :]
        parts = PurePosixPath(rel).parts
        if not parts or ".." in parts or rel.startswith("/"):
            inputs.notes.append(f"skipped s3://{bucket}/{key}: not a relative path")
            return
        target = dags.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        download(client, bucket, key, target)

    try:
        with ThreadPoolExecutor(PARALLELISM) as pool:
            list(pool.map(fetch, keys))
    except (ClientError, BotoCoreError, OSError) as exc:
        raise _s3_problem(exc, f"s3://{bucket}/{prefix}") from None
    for what, (_, _, name) in ARTIFACTS.items():
        key, version, explicit = _artifact_choice(
            what, given[what], env, _default_key(prefix, name)
        )
        key = key.removeprefix(f"s3://{bucket}/")
        if not key:
            inputs.artifacts[what] = None
            continue
        target = work / name
        try:
            download(client, bucket, key, target, version_id=version)
        except (ClientError, BotoCoreError) as exc:
            if is_not_found(exc) and not explicit:
                inputs.artifacts[what] = None
                inputs.notes.append(f"no s3://{bucket}/{key}: not checked")
                continue
            raise _s3_problem(exc, f"s3://{bucket}/{key}") from None
        inputs.artifacts[what] = target
        inputs.artifact_names[what] = f"s3://{bucket}/{key}" + (
            f" (version {version})" if version else ""
        )
    return inputs
