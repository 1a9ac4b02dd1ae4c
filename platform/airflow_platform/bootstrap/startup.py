"""Running startup.sh like MWAA: sourced by bash with a time limit, its exports kept.

The script is sourced (not executed) so `export X=1` reaches the component; an EXIT trap
dumps the shell's environment with `env -0` even when the script calls `exit`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from airflow_platform.environment.config_rules import (
    env_var_config_key,
    owned_env_vars,
    refused_env_var,
)

# Variables startup.sh may not set, change or unset. The platform (or Kubernetes, for the
# IRSA/Pod Identity credentials) decides them; overriding one would break the component
# or the isolation between environments. PATH, LD_LIBRARY_PATH, JAVA_HOME and other
# AIRFLOW__* settings stay open, as on MWAA; the AIRFLOW__SECTION__KEY of a key users may not
# set in airflowConfigurationOptions (config_rules: owned keys, the auth manager and
# SimpleAuthManager, every _CMD and _SECRET indirection) is refused here too.
PROTECTED_NAMES: frozenset[str] = frozenset(
    {
        "MWAA_AIRFLOW_COMPONENT",
        "AIRFLOW_HOME",
        "AIRFLOW_CONFIG",
        "AIRFLOW_VERSION",
        "AIRFLOW__WEBSERVER__BASE_URL",
        "AIRFLOW__API__BASE_URL",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONUNBUFFERED",
    }
    | owned_env_vars()
)
PROTECTED_PREFIXES: tuple[str, ...] = ("MWAA__", "AIRFLOW_PLATFORM_")

# Set by bash itself, not by the script.
_SHELL_NOISE = frozenset({"SHLVL", "_", "PWD", "OLDPWD"})

_WRAPPER = (
    '__airflow_platform_dump="$1"; __airflow_platform_script="$2"; shift 2; '
    "trap 'env -0 > \"$__airflow_platform_dump\"' EXIT; "
    'source "$__airflow_platform_script"'
)


def is_protected(name: str) -> bool:
    return (
        name in PROTECTED_NAMES
        or name.startswith(PROTECTED_PREFIXES)
        or refused_env_var(name) is not None
    )


def _why_protected(name: str) -> str:
    rule = refused_env_var(name)
    if rule is not None:
        return f"{name}: {rule.message(env_var_config_key(name) or name)}"
    if name == "AIRFLOW_CONFIG":
        return f"{name}: the configuration comes from the pod's environment only"
    return f"{name}: set by the platform"


class StartupScriptError(RuntimeError):
    pass


@dataclass
class StartupResult:
    environment: dict[str, str]
    exported: dict[str, str] = field(default_factory=dict)  # set or changed by the script
    unset: list[str] = field(default_factory=list)
    exit_code: int = 0


def _parse_env_dump(raw: bytes) -> dict[str, str]:
    env: dict[str, str] = {}
    for entry in raw.split(b"\0"):
        if not entry:
            continue
        name, sep, value = entry.partition(b"=")
        if sep:
            env[name.decode(errors="surrogateescape")] = value.decode(errors="surrogateescape")
    return env


def run_startup_script(
    script: Path,
    environment: Mapping[str, str],
    timeout: float,
    cwd: Path | None = None,
) -> StartupResult:
    """Source `script` in bash with `environment`; return the environment it leaves.

    Raises StartupScriptError when it fails, runs past `timeout` seconds or touches a
    protected variable (the message names them).
    """
    base = dict(environment)
    with tempfile.TemporaryDirectory(prefix="startup-env-") as tmp:
        dump = Path(tmp) / "env"
        proc = subprocess.Popen(
            ["bash", "-c", _WRAPPER, "startup.sh", str(dump), str(script)],
            env=base,
            cwd=cwd if cwd and cwd.is_dir() else None,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # so a timeout can stop everything it started
        )
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop_group(proc)
            raise StartupScriptError(
                f"startup script {script} did not finish within {timeout:g} s and was stopped "
                "(MWAA's limit is 5 minutes; raise AIRFLOW_PLATFORM_STARTUP_TIMEOUT or make "
                "the script faster)"
            ) from None
        if code != 0:
            raise StartupScriptError(
                f"startup script {script} exited with code {code}; fix the script (its output "
                "is above) — the component does not start with a failed startup script"
            )
        if not dump.exists():
            raise StartupScriptError(
                f"startup script {script} ended without leaving its environment (did it "
                "replace the shell with exec?); remove the exec"
            )
        after = _parse_env_dump(dump.read_bytes())

    exported = {
        name: value
        for name, value in after.items()
        if name not in _SHELL_NOISE and base.get(name) != value
    }
    unset = sorted(name for name in base if name not in after and name not in _SHELL_NOISE)
    touched = sorted(name for name in [*exported, *unset] if is_protected(name))
    if touched:
        reasons = "\n".join(f"  - {_why_protected(name)}" for name in touched)
        raise StartupScriptError(
            f"startup script {script} changed protected variable(s) {', '.join(touched)}; "
            "the platform sets these and they cannot be overridden: remove those exports or "
            f"unsets from the script\n{reasons}"
        )
    final = {name: value for name, value in base.items() if name not in unset}
    final.update(exported)
    return StartupResult(final, exported, unset, code)


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
