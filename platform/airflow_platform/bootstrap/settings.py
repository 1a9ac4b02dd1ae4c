"""The entrypoint's knobs, all read from the environment the chart renders."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from airflow_platform.paths import DEFAULT_SYNC_ROOT, SYNC_ROOT_ENV, SyncLayout

COMPONENTS = (
    "scheduler",
    "dag-processor",
    "triggerer",
    "worker",
    "api-server",
    "execution-api",
    "migrations",
)

# MWAA tells startup.sh which container it runs in with its own three names; the
# dag-processor and triggerer live inside MWAA's scheduler container, the execution API
# inside its web server.
MWAA_COMPONENT_NAMES = {
    "scheduler": "scheduler",
    "dag-processor": "scheduler",
    "triggerer": "scheduler",
    "worker": "worker",
    "api-server": "webserver",
    "execution-api": "webserver",
    "migrations": "migrations",
}

ON_FAILURE_ENV = "AIRFLOW_PLATFORM_REQUIREMENTS_ON_FAILURE"
CONSTRAINTS_ENV = "AIRFLOW_PLATFORM_CONSTRAINTS"
PACKAGES_DIR_ENV = "AIRFLOW_PLATFORM_PACKAGES_DIR"
WHEEL_CACHE_ENV = "AIRFLOW_PLATFORM_WHEEL_CACHE"
STARTUP_TIMEOUT_ENV = "AIRFLOW_PLATFORM_STARTUP_TIMEOUT"
CACHE_MODE_ENV = "AIRFLOW_PLATFORM_REQUIREMENTS_CACHE"
# The chart mounts a shared cache read-only where tasks run: only the writer publishes to it.
CACHE_READ_ONLY_ENV = "AIRFLOW_PLATFORM_REQUIREMENTS_CACHE_READ_ONLY"

DEFAULT_PACKAGES_DIR = Path("/opt/airflow/packages")
DEFAULT_WHEEL_CACHE = Path("/opt/airflow/wheel-cache")
DEFAULT_STARTUP_TIMEOUT = 300.0  # MWAA's limit for startup.sh
CACHE_MODES = ("tree", "wheels", "off")


class SettingsError(ValueError):
    pass


class BootstrapSettings:
    __slots__ = (
        "cache_dir",
        "cache_mode",
        "cache_read_only",
        "constraints",
        "layout",
        "on_failure",
        "packages_dir",
        "startup_timeout",
    )  # a plain class: see result.InstallResult

    def __init__(
        self,
        layout: SyncLayout,
        packages_dir: Path,
        cache_dir: Path,
        constraints: Path | None,
        on_failure: str,  # fail | continue
        startup_timeout: float,
        cache_mode: str,  # tree | wheels | off
        cache_read_only: bool = False,
    ) -> None:
        self.layout = layout
        self.packages_dir = packages_dir
        self.cache_dir = cache_dir
        self.constraints = constraints
        self.on_failure = on_failure
        self.startup_timeout = startup_timeout
        self.cache_mode = cache_mode
        self.cache_read_only = cache_read_only

    def cache_writable(self) -> bool:
        """False where the cache is mounted read-only: use it, never write to it."""
        if self.cache_read_only:
            return False
        return not self.cache_dir.exists() or os.access(self.cache_dir, os.W_OK)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> BootstrapSettings:
        env = os.environ if env is None else env
        on_failure = env.get(ON_FAILURE_ENV, "fail").strip().lower() or "fail"
        if on_failure not in ("fail", "continue"):
            raise SettingsError(
                f"{ON_FAILURE_ENV}={env[ON_FAILURE_ENV]!r} is not valid; use fail or continue"
            )
        raw_timeout = env.get(STARTUP_TIMEOUT_ENV, "") or str(DEFAULT_STARTUP_TIMEOUT)
        try:
            timeout = float(raw_timeout)
        except ValueError:
            timeout = -1.0
        if timeout <= 0:
            raise SettingsError(
                f"{STARTUP_TIMEOUT_ENV}={raw_timeout!r} is not valid; give seconds, e.g. 300"
            )
        cache_mode = env.get(CACHE_MODE_ENV, "tree").strip().lower() or "tree"
        if cache_mode not in CACHE_MODES:
            raise SettingsError(
                f"{CACHE_MODE_ENV}={cache_mode!r} is not valid; use one of {', '.join(CACHE_MODES)}"
            )
        constraints = env.get(CONSTRAINTS_ENV, "").strip()
        return cls(
            layout=SyncLayout(Path(env.get(SYNC_ROOT_ENV, "") or DEFAULT_SYNC_ROOT)),
            packages_dir=Path(env.get(PACKAGES_DIR_ENV, "") or DEFAULT_PACKAGES_DIR),
            cache_dir=Path(env.get(WHEEL_CACHE_ENV, "") or DEFAULT_WHEEL_CACHE),
            constraints=Path(constraints) if constraints else None,
            on_failure=on_failure,
            startup_timeout=timeout,
            cache_mode=cache_mode,
            cache_read_only=env.get(CACHE_READ_ONLY_ENV, "").strip().lower() in ("1", "true"),
        )
