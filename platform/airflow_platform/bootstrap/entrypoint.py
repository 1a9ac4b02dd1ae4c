"""The container entrypoint: startup.sh, requirements, plugins, then exec Airflow.

Order and rules follow MWAA: startup.sh runs first on every component except the
migrations Job, its exports reach requirements and Airflow, requirements are installed
against the constraints (fail closed unless told to continue), the plugins folder goes
on the Python path, and the Airflow command replaces this process.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from airflow_platform.bootstrap.requirements_step import install_requirements
from airflow_platform.bootstrap.result import InstallResult, RequirementsError
from airflow_platform.bootstrap.settings import (
    COMPONENTS,
    MWAA_COMPONENT_NAMES,
    ON_FAILURE_ENV,
    BootstrapSettings,
    SettingsError,
)
from airflow_platform.logs import setup_logging

TYPE_CHECKING = False  # typing itself costs a container start milliseconds
if TYPE_CHECKING:
    from typing import NoReturn

COMPONENT_ENV = "AIRFLOW_PLATFORM_COMPONENT"
MWAA_COMPONENT_ENV = "MWAA_AIRFLOW_COMPONENT"


class BootstrapError(RuntimeError):
    """A start that must not go on; the message says what to fix."""


class Prepared:
    """The command and the environment to exec it with."""

    __slots__ = ("argv", "environment", "requirements")  # a plain class: see result.py

    def __init__(
        self, argv: list[str], environment: dict[str, str], requirements: InstallResult | None
    ) -> None:
        self.argv = argv
        self.environment = environment
        self.requirements = requirements


def _prepend_path(env: dict[str, str], name: str, entries: Sequence[str]) -> None:
    current = [p for p in env.get(name, "").split(os.pathsep) if p]
    env[name] = os.pathsep.join([*entries, *(p for p in current if p not in entries)])


def _logger() -> logging.Logger:
    """stderr, text unless AIRFLOW_PLATFORM_LOG_FORMAT says json (the chart does)."""
    logger = logging.getLogger("airflow_platform.bootstrap")
    if not logger.handlers:
        setup_logging("bootstrap", logger.name, stream=sys.stderr, default="text")
    return logger


def _step_log(message: str) -> None:
    _logger().info(message, extra={"event": "step"})


def prepare(
    component: str,
    argv: Sequence[str],
    environment: Mapping[str, str] | None = None,
    log: Callable[[str], None] | None = None,
) -> Prepared:
    """Everything before the exec; returns the command and the environment to run it with."""
    log = log or _step_log
    if component not in COMPONENTS:
        raise BootstrapError(
            f"--component {component!r} is not known; use one of {', '.join(COMPONENTS)}"
        )
    if not argv:
        raise BootstrapError("no command to run: add it after --, e.g. -- airflow scheduler")
    env = dict(os.environ if environment is None else environment)
    try:
        settings = BootstrapSettings.from_env(env)
    except SettingsError as exc:
        raise BootstrapError(str(exc)) from None
    layout = settings.layout
    env[COMPONENT_ENV] = component
    env[MWAA_COMPONENT_ENV] = MWAA_COMPONENT_NAMES[component]

    script = layout.startup_script
    if component == "migrations":
        log("migrations: startup.sh is not run (as on MWAA)")
    elif script.is_file():
        # Imported only when there is a script: most starts have none and skip its cost.
        from airflow_platform.bootstrap.startup import StartupScriptError, run_startup_script

        started = time.monotonic()
        log(f"running {script} (limit {settings.startup_timeout:g} s)")
        try:
            result = run_startup_script(
                script, env, settings.startup_timeout, cwd=_airflow_home(env)
            )
        except StartupScriptError as exc:
            raise BootstrapError(str(exc)) from None
        env = result.environment
        changed = sorted(result.exported)
        log(
            f"startup.sh done in {time.monotonic() - started:.2f} s; exported "
            f"{', '.join(changed) if changed else 'nothing'}"
            + (f"; unset {', '.join(result.unset)}" if result.unset else "")
        )

    requirements: InstallResult | None = None
    try:
        requirements = install_requirements(settings, env, log)
    except RequirementsError as exc:
        if settings.on_failure != "continue":
            raise BootstrapError(
                f"{exc}\nThe component does not start with broken requirements. Fix "
                f"requirements.txt, or set {ON_FAILURE_ENV}=continue (requirements.onFailure "
                "in the chart) to start without them as MWAA does."
            ) from None
        log(f"{exc}\ncontinuing WITHOUT requirements ({ON_FAILURE_ENV}=continue)")

    path_entries: list[str] = []
    if requirements and requirements.installed:
        path_entries.append(str(settings.packages_dir))
        bin_dir = settings.packages_dir / "bin"
        if bin_dir.is_dir():
            _prepend_path(env, "PATH", [str(bin_dir)])
    if layout.plugins.is_dir():
        path_entries.append(str(layout.plugins))
    if path_entries:
        _prepend_path(env, "PYTHONPATH", path_entries)
    return Prepared(list(argv), env, requirements)


def _airflow_home(env: Mapping[str, str]) -> Path | None:
    home = env.get("AIRFLOW_HOME")
    return Path(home) if home else None


def start(component: str, argv: Sequence[str]) -> int:
    """The `bootstrap` command: exec the command, or say why not and return exit code 3."""
    try:
        run(component, argv)
    except BootstrapError as exc:
        _logger().error(f"error: {exc}", extra={"event": "error", "airflow_component": component})
        return 3


def run(component: str, argv: Sequence[str]) -> NoReturn:
    """Prepare, then replace this process with the command (never returns on success)."""
    prepared = prepare(component, argv)
    _logger().info(f"exec {' '.join(prepared.argv)}", extra={"event": "exec"})
    try:
        os.execvpe(prepared.argv[0], prepared.argv, prepared.environment)
    except OSError as exc:
        raise BootstrapError(
            f"cannot run {prepared.argv[0]!r}: {exc.strerror}; check the command after --"
        ) from None
