"""Runs inside the target Airflow: facts about it, a plugin load, and every DAG file's import.

Started as `python -m airflow_platform.migrate.probe JOB.json` with AIRFLOW_HOME, the DAGs
and plugins folders and PYTHONPATH (the requirements install, the plugins) set by the
caller. It imports Airflow once, then forks one child per DAG file, as Airflow's own DAG
processor does, so a file that hangs, calls sys.exit()/os._exit() or crashes takes only
its child down. Each child parses its file in a real DagBag (the DAG processor's own
dagbag_import_timeout applies inside it); the parent kills a child's whole process group
when it runs past the file limit (dag_file_processor_timeout).

Output: one JSON object per line on stdout (facts, files, plugins, one per file, done).
Only the standard library and Airflow are imported here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

_OUT = sys.stdout


def emit(kind: str, **data: Any) -> None:
    _OUT.write(json.dumps({"kind": kind, **data}, default=str) + "\n")
    _OUT.flush()


# -- facts -----------------------------------------------------------------------------------
def removed_context_keys() -> tuple[list[str], list[str]]:
    """Airflow 3.3.2's context keys, and the 2.x keys it no longer provides.

    The standard provider's virtualenv operator still lists the keys it serializes for
    Airflow 2 ("should be removed when Airflow 2 support is dropped"); those minus the
    Task SDK's Context are the keys a 2.x task may read that Airflow 3 no longer sets.
    """
    from airflow.providers.standard.operators.python import _BasePythonVirtualenvOperator as V
    from airflow.sdk.definitions.context import KNOWN_CONTEXT_KEYS

    both = (
        V.BASE_SERIALIZABLE_CONTEXT_KEYS
        | V.PENDULUM_SERIALIZABLE_CONTEXT_KEYS
        | V.AIRFLOW_SERIALIZABLE_CONTEXT_KEYS
    )
    return sorted(KNOWN_CONTEXT_KEYS), sorted(both - KNOWN_CONTEXT_KEYS)


def orm_models() -> list[str]:
    """Names in airflow.models that are mapped to metadata database tables."""
    import airflow.models as models

    found = []
    base = models.Base
    for name in models.__all__:
        with contextlib.suppress(Exception):
            obj = getattr(models, name)
            if isinstance(obj, type) and issubclass(obj, base) and obj is not base:
                found.append(name)
    return sorted(found)


def config_changes() -> list[dict[str, Any]]:
    """The rules `airflow config lint` and `airflow config update` apply, as data."""
    from airflow.cli.commands.config_command import CONFIGS_CHANGES

    out = []
    for change in CONFIGS_CHANGES:
        out.append(
            {
                "section": change.config.section,
                "option": change.config.option,
                "renamed_to": (
                    [change.renamed_to.section, change.renamed_to.option]
                    if change.renamed_to
                    else None
                ),
                "was_removed": change.was_removed,
                "was_deprecated": change.was_deprecated,
                "remove_if_equals": change.remove_if_equals,
                "default_change": change.default_change,
                "old_default": change.old_default,
                "new_default": change.new_default,
                "is_invalid_if": change.is_invalid_if,
                "breaking": change.breaking,
                "suggestion": change.suggestion,
            }
        )
    return out


def known_options() -> list[str]:
    from airflow.configuration import conf

    return sorted(
        f"{section}.{option}"
        for section, body in conf.configuration_description.items()
        for option in (body.get("options") or {})
    )


def plugin_attributes() -> list[str]:
    from airflow.plugins_manager import AirflowPlugin

    return sorted(
        name for klass in AirflowPlugin.__mro__ for name in vars(klass) if not name.startswith("_")
    )


def has_module(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


# -- plugins ---------------------------------------------------------------------------------
PLUGIN_LISTS = (
    "flask_blueprints",
    "appbuilder_views",
    "appbuilder_menu_items",
    "admin_views",
    "menu_links",
    "fastapi_apps",
    "fastapi_root_middlewares",
    "external_views",
    "react_apps",
    "macros",
    "timetables",
    "listeners",
    "operator_extra_links",
    "global_operator_extra_links",
)


def load_plugins() -> dict[str, Any]:
    """What Airflow's plugins manager makes of the plugins folder."""
    from airflow import plugins_manager

    plugins, errors = plugins_manager._get_plugins()
    base = set(plugin_attributes())
    out = []
    for plugin in plugins:
        source = str(getattr(plugin, "source", "") or "")
        # Plugins folder sources carry a path relative to the folder; providers' do not.
        path = str(getattr(getattr(plugin, "source", None), "path", "") or "")
        if not path or path.startswith(("..", "/")):
            continue  # a provider's or Airflow's own plugin, not the user's
        klass = plugin if isinstance(plugin, type) else type(plugin)
        own = sorted(
            name
            for k in klass.__mro__
            if k.__module__ not in ("builtins",) and "airflow" not in k.__module__.split(".")[0]
            for name in vars(k)
            if not name.startswith("_") and name not in base
        )
        out.append(
            {
                "name": plugin.name,
                "source": source,
                "path": str(path),
                "counts": {n: len(getattr(plugin, n, []) or []) for n in PLUGIN_LISTS},
                "unknown_attributes": own,
            }
        )
    return {"plugins": out, "errors": {str(k): str(v) for k, v in errors.items()}}


# -- DAG files -------------------------------------------------------------------------------
def list_dag_files(root: str) -> list[str]:
    """The files Airflow's DAG processor would parse (.airflowignore and safe mode applied)."""
    from airflow.utils.file import list_py_file_paths

    return sorted(os.path.relpath(p, root) for p in list_py_file_paths(root, safe_mode=True))


def _schedule_of(dag: Any) -> str:
    with contextlib.suppress(Exception):
        return str(dag.timetable.summary or dag.timetable.description or "")
    return ""


def parse_one(root: str, rel: str) -> dict[str, Any]:
    from airflow.dag_processing.dagbag import BundleDagBag

    path = os.path.join(root, rel)
    started = time.monotonic()
    # The bag records the warnings the file raises (captured_warnings), as the processor does.
    bag = BundleDagBag(
        dag_folder=path,
        bundle_path=Path(root),
        bundle_name="dags",
        load_op_links=False,
        safe_mode=False,
    )
    errors = {str(k): str(v) for k, v in bag.import_errors.items()}
    own_warnings = list(bag.captured_warnings.get(path, ()))
    return {
        "file": rel,
        "status": "error" if errors else "ok",
        "errors": errors,
        "warnings": own_warnings,
        "dags": [
            {
                "dag_id": dag.dag_id,
                "schedule": _schedule_of(dag),
                "catchup": bool(getattr(dag, "catchup", False)),
                "tasks": len(getattr(dag, "task_ids", []) or []),
            }
            for dag in bag.dags.values()
        ],
        "seconds": round(time.monotonic() - started, 4),
    }


def _child(work: Path, index: int, target: Any) -> None:
    """In the forked child: isolate, run `target`, write the result, never return."""
    code = 0
    try:
        os.setpgid(0, 0)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        log = os.open(work / f"{index}.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        try:
            result = target()
        except SystemExit as exc:
            tb = traceback.extract_tb(exc.__traceback__)
            result = {"status": "exit", "exit_code": exc.code, "frames": _frames(tb)}
        except BaseException as exc:
            result = {
                "status": "error",
                "errors": {"": "".join(traceback.format_exception(exc))},
            }
        tmp = work / f"{index}.json.tmp"
        tmp.write_text(json.dumps(result, default=str))
        os.replace(tmp, work / f"{index}.json")
    except BaseException:
        code = 70
    finally:
        os._exit(code)


def _frames(tb: traceback.StackSummary) -> list[list[Any]]:
    return [[frame.filename, frame.lineno] for frame in tb]


def _log_tail(path: Path, lines: int = 5) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    return ""


def run_files(job: dict[str, Any], files: list[str]) -> None:
    root = job["dags_root"]
    work = Path(job["work_dir"])
    limit = float(job["file_timeout"])
    parallel = max(1, int(job["parallel"]))
    pending = list(enumerate(files))
    running: dict[int, tuple[int, int, str, float]] = {}  # pidfd -> pid, index, file, start
    while pending or running:
        while pending and len(running) < parallel:
            index, rel = pending.pop(0)
            pid = os.fork()
            if pid == 0:
                _child(work, index, lambda rel=rel: parse_one(root, rel))
            running[os.pidfd_open(pid)] = (pid, index, rel, time.monotonic())
        now = time.monotonic()
        wait = min(started + limit for _, _, _, started in running.values()) - now
        ready, _, _ = select.select(list(running), [], [], max(0.0, wait))
        now = time.monotonic()
        for fd in list(running):
            pid, index, rel, started = running[fd]
            timed_out = fd not in ready and now - started >= limit
            if fd not in ready and not timed_out:
                continue
            if timed_out:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            os.close(fd)
            del running[fd]
            emit("file", **_result(work, index, rel, status, timed_out, now - started, limit))


def _result(
    work: Path, index: int, rel: str, status: int, timed_out: bool, seconds: float, limit: float
) -> dict[str, Any]:
    out_file = work / f"{index}.json"
    log_tail = _log_tail(work / f"{index}.log")
    if timed_out:
        return {
            "file": rel,
            "status": "timeout",
            "seconds": round(seconds, 3),
            "limit": limit,
            "log": log_tail,
        }
    try:
        result = json.loads(out_file.read_text())
    except (OSError, ValueError):
        code = os.waitstatus_to_exitcode(status)
        return {
            "file": rel,
            "status": "exit",
            "exit_code": code,
            "seconds": round(seconds, 3),
            "log": log_tail,
        }
    result.setdefault("file", rel)
    result.setdefault("seconds", round(seconds, 3))
    result["log"] = log_tail
    return result


def _quiet_logging() -> None:
    logging.disable(logging.CRITICAL)
    with contextlib.suppress(Exception):
        import structlog

        structlog.configure(
            wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL + 10)
        )


def main(job_path: str) -> int:
    job = json.loads(Path(job_path).read_text())
    # Airflow logs every import error itself; the results carry them.
    _quiet_logging()
    import airflow

    _quiet_logging()
    context_keys, removed = removed_context_keys()
    emit(
        "facts",
        airflow_version=airflow.__version__,
        context_keys=context_keys,
        removed_context_keys=removed,
        orm_models=orm_models(),
        config_changes=config_changes(),
        known_options=known_options(),
        plugin_attributes=plugin_attributes(),
        fab_provider=has_module("airflow.providers.fab"),
    )
    # Modules nearly every DAG file imports: loaded once here, shared by every child.
    for name in job.get("preload", ()):
        with contextlib.suppress(Exception):
            __import__(name)
    work = Path(job["work_dir"])
    work.mkdir(parents=True, exist_ok=True)
    if job.get("plugins"):
        pid = os.fork()
        if pid == 0:
            _child(work, -1, load_plugins)
        fd = os.pidfd_open(pid)
        ready, _, _ = select.select([fd], [], [], float(job["file_timeout"]))
        if not ready:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        os.close(fd)
        emit("plugins", **_result(work, -1, "plugins", status, not ready, 0.0, 0.0))
    files = list_dag_files(job["dags_root"]) if job.get("import_dags", True) else []
    emit("files", files=files)
    run_files(job, files)
    emit("done")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
