"""The container tier: the platform image built here, the chart's pods played by podman.

The tier fails (never skips) when podman or buildah cannot run, saying why: the images and
pods it proves are what users deploy.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from containers_stack import Stack, StackError

from airflow_platform.image import podman
from airflow_platform.image.build import ensure_platform
from airflow_platform.image.podman import PodmanError
from airflow_platform.local import services

DATA = Path(__file__).with_name("data")
ARTIFACTS = {
    "dags.s3.requirementsKey": "requirements.txt",
    "dags.s3.pluginsKey": "plugins.zip",
    "dags.s3.startupScriptKey": "startup.sh",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.containers)
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def platform_image() -> str:
    try:
        _, built = ensure_platform(progress=lambda msg: print(msg, file=sys.stderr))
        podman.run("run", "--rm", "--read-only", built.tag, "airflow-platform", "version")
    except (PodmanError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"the container tier needs working podman and buildah: {exc}", pytrace=False)
    return built.tag


def plugins_zip(work: Path) -> bytes:
    """The plugin module plus the wheels of requirements.txt (`requirements package`): the
    pods install offline, as MWAA environments without internet access do."""
    bundle = work / "bundle.zip"
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("airflow-platform")), "requirements", "package",
            str(DATA / "requirements.txt"), "-o", str(bundle),
            "-c", str(Path(__file__).parents[2] / "platform" / "constraints.txt"),
        ],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if result.returncode != 0:
        pytest.fail(f"`requirements package` failed:\n{result.stderr}", pytrace=False)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive, zipfile.ZipFile(bundle) as wheels:
        for path in sorted((DATA / "plugins").iterdir()):
            archive.write(path, path.name)
        for name in wheels.namelist():
            archive.writestr(name, wheels.read(name))
    return out.getvalue()


# Module scope: the pods stop once this tier's tests are done, so the tiers after it do not
# share the machine's two cores with a whole platform of containers.
@pytest.fixture(scope="module")
def stack(platform_image: str) -> Iterator[Stack]:
    # PostgreSQL runs as `nobody` when we are root: its state dir must be reachable.
    work = Path(tempfile.mkdtemp(prefix="airflow-platform-containers-"))
    work.chmod(0o755)
    running = Stack(work=work, image=platform_image, artifacts=dict(ARTIFACTS))
    running.progress = lambda msg: print(msg, file=sys.stderr)
    payloads = {
        "requirements.txt": (DATA / "requirements.txt").read_bytes(),
        "plugins.zip": plugins_zip(work),
        "startup.sh": (DATA / "startup.sh").read_bytes(),
    }

    def upload() -> None:
        assert running.host is not None
        s3, _ = services.aws_clients(running.host.moto_endpoint)
        for key, body in payloads.items():
            s3.put_object(Bucket=running.bucket, Key=key, Body=body)

    running.upload_artifacts = upload  # type: ignore[method-assign]
    try:
        running.up(timeout=900)
    except (StackError, PodmanError, subprocess.TimeoutExpired) as exc:
        running.down()
        shutil.rmtree(work, ignore_errors=True)
        pytest.fail(f"the chart's pods did not come up as containers: {exc}", pytrace=False)
    yield running
    running.down()
    shutil.rmtree(work, ignore_errors=True)
