"""The truth test: every DAG file imported by a real Airflow 3.3.2 DagBag, with the
environment's requirements installed by the bootstrap's installer (and its cache) and its
plugins unpacked by the platform's safe unzip. The probe (probe.py) does the importing in
a process of its own; this side prepares what it needs and turns its results into findings.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_platform.migrate.findings import Finding

# The limits the platform gives Airflow's DAG processor (MWAA's defaults).
DAGBAG_IMPORT_TIMEOUT = 30.0
DAG_FILE_PROCESSOR_TIMEOUT = 50.0
PRELOAD = (
    "airflow.sdk",
    "airflow.providers.standard.operators.bash",
    "airflow.providers.standard.operators.python",
    "airflow.providers.standard.operators.empty",
)
_FRAME = re.compile(r'File "([^"]+)", line (\d+)')


class ProbeFailed(RuntimeError):
    pass


@dataclass
class ProbeResults:
    facts: dict[str, Any] = field(default_factory=dict)
    plugins: dict[str, Any] | None = None
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    dag_files: list[str] = field(default_factory=list)


def probe_environment(
    work: Path,
    dags: Path,
    plugins: Path | None,
    packages: Path | None,
    options: dict[str, str],
    import_timeout: float,
    file_timeout: float,
) -> dict[str, str]:
    home = work / "airflow-home"
    home.mkdir(parents=True, exist_ok=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AIRFLOW__") and k not in ("AIRFLOW_HOME", "AIRFLOW_CONFIG")
    }
    # The environment's own options first, so the ones below win where they collide.
    for key, value in options.items():
        section, _, name = key.partition(".")
        if section and name:
            env[f"AIRFLOW__{section.upper()}__{name.upper()}"] = str(value)
    empty_plugins = work / "no-plugins"
    empty_plugins.mkdir(exist_ok=True)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins or empty_plugins),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": f"{import_timeout:g}",
            "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": f"{file_timeout:g}",
            "AIRFLOW__CORE__DAGBAG_IMPORT_ERROR_TRACEBACK_DEPTH": "4",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    entries = [str(p) for p in (packages, plugins) if p is not None]
    here = str(Path(__file__).resolve().parents[2])  # so the probe module is importable
    env["PYTHONPATH"] = os.pathsep.join([*entries, here])
    return env


def run_probe(
    work: Path,
    dags: Path,
    plugins: Path | None,
    packages: Path | None,
    options: dict[str, str],
    *,
    import_timeout: float = DAGBAG_IMPORT_TIMEOUT,
    file_timeout: float = DAG_FILE_PROCESSOR_TIMEOUT,
    parallel: int = 0,
    import_dags: bool = True,
    on_files: Callable[[int], None] | None = None,
    on_file: Callable[[str], None] | None = None,
) -> ProbeResults:
    job = {
        "dags_root": str(dags),
        "work_dir": str(work / "probe"),
        "file_timeout": file_timeout,
        "parallel": parallel or os.cpu_count() or 1,
        "plugins": plugins is not None,
        "preload": list(PRELOAD),
        "import_dags": import_dags,
    }
    job_file = work / "probe-job.json"
    job_file.write_text(json.dumps(job))
    env = probe_environment(work, dags, plugins, packages, options, import_timeout, file_timeout)
    results = ProbeResults()
    stderr_path = work / "probe.stderr"
    with stderr_path.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "airflow_platform.migrate.probe", str(job_file)],
            env=env,
            cwd=str(work),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
        assert proc.stdout is not None
        for message in _lines(proc.stdout):
            kind = message.pop("kind", "")
            if kind == "facts":
                results.facts = message
            elif kind == "plugins":
                results.plugins = message
            elif kind == "files":
                results.dag_files = list(message["files"])
                if on_files:
                    on_files(len(results.dag_files))
            elif kind == "file":
                results.files[message["file"]] = message
                if on_file:
                    on_file(message["file"])
        code = proc.wait()
    if code != 0 or not results.facts:
        tail = "\n".join(stderr_path.read_text(errors="replace").strip().splitlines()[-15:])
        raise ProbeFailed(f"the Airflow import probe failed (exit code {code}):\n{tail}")
    return results


def _lines(stream: Any) -> Iterator[dict[str, Any]]:
    for line in stream:
        line = line.strip()
        if line.startswith("{"):
            try:
                yield json.loads(line)
            except ValueError:
                continue


def _error_line(text: str, rel: str) -> int | None:
    line = None
    for name, number in _FRAME.findall(text):
        if name.endswith("/" + rel) or name == rel:
            line = int(number)
    return line


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    # Airflow appends doc links after a timeout message; the exception line comes first.
    for line in reversed(lines):
        if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Timeout|Interrupt)\b", line):
            return line.strip()
    return lines[-1].strip() if lines else "import failed"


def import_findings(
    results: ProbeResults, dags: Path | None = None, prefix: str = "dags/"
) -> list[Finding]:
    root = f"{dags}/" if dags else None

    def local(text: str) -> str:  # the working copy's path means nothing to the reader
        return text.replace(root, prefix) if root else text

    findings: list[Finding] = []
    for rel, result in sorted(results.files.items()):
        where = prefix + rel
        status = result.get("status")
        if status == "timeout":
            findings.append(
                Finding(
                    "MIG002",
                    "blocker",
                    where,
                    None,
                    f"the import did not finish within {result.get('limit', 0):g} s "
                    "(dag_file_processor_timeout) and was stopped",
                    "move slow work (network calls, large reads) out of the top level of the "
                    "file into tasks",
                    "airflow",
                )
            )
        elif status == "exit":
            findings.append(
                Finding(
                    "MIG003",
                    "blocker",
                    where,
                    None,
                    f"the interpreter ended during the import (exit code "
                    f"{result.get('exit_code')}): os._exit() or a crash",
                    "never exit at import time; raise an exception or skip the DAG instead",
                    "airflow",
                )
            )
        for text in (result.get("errors") or {}).values():
            last = _last_line(text)
            timed_out = "AirflowTaskTimeout" in text and "DagBag import timeout" in text
            exited = last.startswith("SystemExit")
            rule = "MIG002" if timed_out else "MIG003" if exited else "MIG001"
            fix = {
                "MIG002": "move slow work out of the top level of the file into tasks "
                "(the limit is dagbag_import_timeout)",
                "MIG003": "never call sys.exit() at import time; raise an exception instead",
            }.get(rule, "fix the line named; the AIR rules on this file usually say how")
            findings.append(
                Finding(rule, "blocker", where, _error_line(text, rel), local(last), fix, "airflow")
            )
        for warning in result.get("warnings") or []:
            match = re.match(r"^(.*?):(\d+): ([\w.]+): (.*)$", warning, re.S)
            line = int(match.group(2)) if match else None
            category = match.group(3).rsplit(".", 1)[-1] if match else ""
            text = f"{category}: {match.group(4)}" if match else warning
            findings.append(
                Finding(
                    "MIG004",
                    "warning",
                    where,
                    line,
                    local(text.strip().splitlines()[0][:400]),
                    "update the call as the warning says",
                    "airflow",
                )
            )
    return findings
