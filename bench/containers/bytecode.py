"""What shipping bytecode in the image saves at every container start (printed, never asserted).

The pods run with a read-only root filesystem, so Python can never write the bytecode it
compiles: a module without a .pyc in the image is compiled again by every process that
imports it, in every container start. This bench imports what the components load (the
scheduler and its Celery executor, the API server and the execution API, the DAG processor,
the triggerer, the FAB auth manager) in a container started the way the chart starts pods
(read-only root, uid 50000 gid 0, every capability dropped, no network), with:

- shipped:     the platform image as built (bytecode compiled for the whole virtualenv);
- no bytecode: the same image with the virtualenv's __pycache__ folders removed (how the
               image was before: 87 % of its modules had none).

Run: .venv/bin/python bench/containers/bytecode.py [--runs 5]. Variants interleaved
(bench/_runner.py). Writes bench/results/containers-bytecode.txt.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from airflow_platform.image import podman
from airflow_platform.image.build import ensure_platform

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _runner import Report, interleave

MODULES = [
    "airflow.jobs.scheduler_job_runner",
    "airflow.providers.celery.executors.celery_executor",
    "airflow.api_fastapi.app",
    "airflow.api_fastapi.execution_api.app",
    "airflow.dag_processing.manager",
    "airflow.jobs.triggerer_job_runner",
    "airflow.providers.fab.auth_manager.fab_auth_manager",
]
PROBE = f"""
import importlib, json, resource, time
began = time.perf_counter()
for name in {MODULES!r}:
    importlib.import_module(name)
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"import_s": time.perf_counter() - began,
                   "cpu_s": usage.ru_utime + usage.ru_stime}}))
"""
# As the chart runs a pod: read-only root, the image's user, nothing granted.
RUN_AS_A_POD = [
    "--rm", "--read-only", "--tmpfs", "/tmp", "--user", "50000:0", "--cap-drop", "all",
    "--security-opt", "no-new-privileges", "--network", "none",
    "-e", "AIRFLOW_HOME=/tmp/airflow",
    "-e", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=postgresql://airflow@127.0.0.1/airflow",
    "--entrypoint", "python",
]  # fmt: skip


def without_bytecode(tag: str) -> str:
    """The image with the virtualenv's bytecode removed (built once, then reused)."""
    stripped = f"{tag}-nobytecode"
    if not podman.image_exists(stripped):
        with tempfile.TemporaryDirectory() as context:
            (Path(context) / "Containerfile").write_text(
                f"FROM {tag}\nUSER root\n"
                "RUN find /home/airflow/.local -name __pycache__ -type d -prune "
                "-exec rm -rf {} +\nUSER airflow\n"
            )
            podman.buildah("bud", "--quiet", *podman.BUILD_ULIMITS, "-t", stripped, context)
    return stripped


def start(tag: str) -> dict[str, float]:
    began = time.monotonic()
    done = podman.run("run", *RUN_AS_A_POD, tag, "-c", PROBE, timeout=600)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return {**figures, "container_s": time.monotonic() - began}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    report = Report("containers-bytecode")
    _, built = ensure_platform(progress=lambda m: print(m, flush=True))
    stripped = without_bytecode(built.tag)
    report.say(f"image {built.tag}; imports: {', '.join(MODULES)}")
    runs = interleave(
        {"shipped": lambda: start(built.tag), "no bytecode": lambda: start(stripped)},
        args.runs,
        report.say,
    )
    shipped, none = runs["shipped"], runs["no bytecode"]
    report.ratio("bytecode.cpu.ratio", "CPU of the imports, no bytecode / shipped",
                 none["cpu_s"], shipped["cpu_s"])  # fmt: skip
    report.ratio("bytecode.container.ratio", "container start to exit, no bytecode / shipped",
                 none["container_s"], shipped["container_s"])  # fmt: skip
    report.figure("bytecode.cpu.shipped", "CPU of the imports, shipped", shipped["cpu_s"])
    report.figure("bytecode.cpu.none", "CPU of the imports, no bytecode", none["cpu_s"])
    report.figure("bytecode.import.shipped", "imports, wall, shipped", shipped["import_s"])
    report.figure("bytecode.import.none", "imports, wall, no bytecode", none["import_s"])
    report.figure("bytecode.container.shipped", "container start to exit, shipped",
                  shipped["container_s"])  # fmt: skip
    report.figure("bytecode.container.none", "container start to exit, no bytecode",
                  none["container_s"])  # fmt: skip
    report.write()


if __name__ == "__main__":
    main()
