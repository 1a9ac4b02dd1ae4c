"""Fixtures shared by every tier: the repository paths, helm, a real moto S3/SQS server, and
the local platform the e2e and hostile tiers share (one per session: a few minutes)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from airflow_platform.procs import ManagedProcess, free_port, port_open, wait_until
from airflow_platform.tools import ToolNotFoundError, find_tool

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "charts" / "airflow-platform"


def tool(name: str) -> str:
    """A bootstrapped tool (helm, kubectl) or the one on PATH."""
    try:
        return find_tool(name, REPO)
    except ToolNotFoundError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def helm_bin() -> str:
    return tool("helm")


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real moto server (S3 + SQS HTTP APIs) on 127.0.0.1; yields its endpoint URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    server = ManagedProcess(
        "moto",
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        log,
    ).start()
    try:
        # A loaded machine takes tens of seconds just to import moto: a generous bound, polled.
        wait_until(lambda: server.check_alive() or port_open(port), 180, "moto server")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_env(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point boto3 (and any child process) at the moto server with throwaway credentials."""
    for key, value in {
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return moto_server


@pytest.fixture
def s3(aws_env: str):
    return boto3.client("s3", endpoint_url=aws_env)


@pytest.fixture
def sqs(aws_env: str):
    return boto3.client("sqs", endpoint_url=aws_env)


@pytest.fixture(scope="session")
def state_dir() -> Iterator[Path]:
    # Not under pytest's 0700 tmp dirs: PostgreSQL runs as `nobody` when we are root.
    root = Path(tempfile.mkdtemp(prefix="airflow-platform-e2e-"))
    root.chmod(0o755)
    yield root / "state"
    shutil.rmtree(root, ignore_errors=True)


# Worker scaling for the session (1..3 workers, 3 tasks each, 12 s idle window) and a
# short task heartbeat timeout; the other tests run unchanged with it.
E2E_VALUES = REPO / "tests" / "e2e" / "data" / "values-e2e.yaml"


class _SharedPlatform:
    """The session's local platform, stopped as soon as the last test that uses it is done, so
    that it never runs next to the platforms the ops and observability tests start later on
    the same worker."""

    def __init__(self) -> None:
        self.running = None
        self.stopped = False

    def stop(self) -> None:
        if self.running is not None:
            running, self.running = self.running, None
            running.down(wipe=False)
        self.stopped = True


SHARED = _SharedPlatform()


@pytest.fixture(scope="session")
def platform(state_dir: Path):
    """The whole local platform (sign-in through its OpenID Connect provider), up once.
    AIRFLOW_PLATFORM_E2E_REUSE=<state dir> runs the tests against a platform already up
    (`local up --state-dir ...`), left running afterwards."""
    from airflow_platform.local.platform import LocalPlatform

    if reuse := os.environ.get("AIRFLOW_PLATFORM_E2E_REUSE"):
        yield LocalPlatform(reuse)
        return
    if SHARED.stopped:  # the collection hook below keeps its users together
        raise RuntimeError("the session's local platform was already stopped")

    lp = LocalPlatform(
        state_dir,
        values_files=[E2E_VALUES],
        progress=lambda msg: print(f"[local] {msg}", flush=True),
    )
    SHARED.running = lp
    try:
        lp.up(timeout=600)
        yield lp
    finally:
        SHARED.stop()


def uses_shared_platform(item: pytest.Item) -> bool:
    """Whether the test needs the session's platform (a module's own `platform` fixture, as
    in tests/ops, overrides it with a narrower scope)."""
    info = getattr(item, "_fixtureinfo", None)
    defs = info.name2fixturedefs.get("platform") if info is not None else None
    return bool(defs) and defs[-1].scope == "session"


# `make test` runs two pytest-xdist workers: the suite alone keeps about one of the two cores
# busy, waiting on services most of the time. A group runs whole on one worker, so a tier's
# costly session fixture (the shared local platform of the e2e and hostile tiers, a control
# plane, an image, a migrated database) starts once; every other module is a group of its own.
TIER_GROUPS = {"e2e": "platform", "hostile": "platform", "cluster": "cluster",
               "containers": "containers", "scaling": "scaling"}  # fmt: skip
# The longest groups go first, so that the two workers finish together (about 9, 4, 3.5, 3.3
# and 2.5 minutes); the rest keep the collection order.
LONGEST_FIRST = [
    "platform",
    "containers",
    "tests/ops/test_rotations.py",
    "cluster",
    "tests/ops/test_ops_local.py",
]


def xdist_group(nodeid: str) -> str:
    """The group a test runs in, from its node id (all the xdist controller sees)."""
    module = nodeid.split("::", 1)[0]
    parts = module.split("/")
    return TIER_GROUPS.get(parts[1], module) if len(parts) > 2 else module


def pytest_xdist_make_scheduler(config: pytest.Config, log):  # type: ignore[no-untyped-def]
    """`--dist loadgroup` by xdist_group() (xdist's own reads marks through a node id
    pytest 9 no longer lets a plugin change)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class TierScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_group(nodeid)

    return TierScheduling(config, log)


class _EarlyKubeBuild:
    """On a machine without the control-plane binaries, their build (about 6 CPU-minutes)
    starts with the session, in the background and at the lowest priority, instead of when
    the cluster tier begins: it then uses the cores the first tiers leave idle.
    scripts/kube/build.sh holds a lock, so the tier's own call waits for this build and finds
    the binaries."""

    process = None

    @classmethod
    def start(cls) -> None:
        import importlib.util
        import subprocess

        spec = importlib.util.spec_from_file_location(
            "cluster_binaries", REPO / "tests" / "cluster" / "cluster_binaries.py"
        )
        assert spec is not None and spec.loader is not None
        binaries = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(binaries)
        bin_dir = binaries.cache_dir() / "bin"
        if all(os.access(bin_dir / name, os.X_OK) for name in binaries.BINARIES):
            return
        log = Path(tempfile.mkstemp(prefix="kube-build-", suffix=".log")[1])
        print(f"[cluster] building the control plane in the background (log: {log})", flush=True)
        with log.open("w") as out:
            # At the lowest priority, so it takes only the cores the tests leave idle and
            # never slows what runs next to it; the cluster tier comes later in the session.
            cls.process = subprocess.Popen(
                ["nice", "-n", "19", str(binaries.BUILD_SCRIPT)], stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    @classmethod
    def stop(cls) -> None:
        """A session that ends first (interrupted, or without the cluster tier) stops it."""
        import signal

        if cls.process is not None and cls.process.poll() is None:
            os.killpg(cls.process.pid, signal.SIGTERM)
            cls.process.wait(timeout=60)


def pytest_configure(config: pytest.Config) -> None:
    # The xdist controller, or a single process; never each worker.
    if os.environ.get("PYTEST_XDIST_WORKER") or config.option.collectonly:
        return
    tiers = [Path(a.split("::")[0]).resolve() for a in config.args]
    cluster = REPO / "tests" / "cluster"
    if any(t == cluster or t in cluster.parents for t in tiers):
        _EarlyKubeBuild.start()


def pytest_unconfigure(config: pytest.Config) -> None:
    _EarlyKubeBuild.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest groups first; the session platform's tests in one block at the front."""

    def rank(item: pytest.Item) -> tuple[int, int]:
        group = xdist_group(item.nodeid)
        order = LONGEST_FIRST.index(group) if group in LONGEST_FIRST else len(LONGEST_FIRST)
        return order, 0 if uses_shared_platform(item) else 1

    items.sort(key=rank)  # stable: within a group and among the rest, collection order


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    if os.environ.get("AIRFLOW_PLATFORM_E2E_REUSE") or not uses_shared_platform(item):
        return
    if nextitem is None or not uses_shared_platform(nextitem):
        SHARED.stop()


os.environ.setdefault("AIRFLOW_PLATFORM_TESTING", "1")
