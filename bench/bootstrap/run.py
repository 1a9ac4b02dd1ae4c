"""Start-up cost of requirements.txt: this entrypoint (cold and warm) vs MWAA's way.

Each "start" is a fresh container as Kubernetes runs it: an empty packages dir, then
`airflow-platform bootstrap --component worker -- python -c ...` up to the exec'd command
importing one of the packages. Figures:

  cold            empty packages dir, empty cache: resolve, download, install
  warm (tree)     empty packages dir, cache holds the installed tree (the default)
  warm (wheels)   empty packages dir, cache holds the resolution and uv's wheels
  restart         the packages dir still holds the install (container restart in a pod)
  MWAA baseline   `pip install -r requirements.txt -c constraints` at every start into a
                  fresh target, pip's cache empty (MWAA containers start from scratch)

Run: .venv/bin/python bench/bootstrap/run.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REQUIREMENTS = """\
boltons==26.2.0
emoji==2.16.0
funcy==2.1
iso8601==2.1.0
ordered-set==4.1.0
prettytable==3.18.0
schedule==1.2.2
simplejson==4.3.0
sortedcontainers==2.4.0
toolz==1.2.0
"""
CHECK = "import boltons, emoji, funcy, iso8601, ordered_set, prettytable, schedule, simplejson, sortedcontainers, toolz"  # noqa: E501
CLI = str(Path(sys.executable).parent / "airflow-platform")


def _base_env() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW_PLATFORM_", "UV_", "PIP_", "MWAA_"))
    }


def _timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])} failed:\n{proc.stderr[-3000:]}")
    return elapsed


class Pod:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.sync = root / "sync"
        (self.sync / "requirements").mkdir(parents=True)
        (self.sync / "requirements" / "requirements.txt").write_text(REQUIREMENTS)
        self.cache = root / "wheel-cache"
        self.packages = root / "packages"

    def start(self, **extra: str) -> float:
        env = (
            _base_env()
            | {
                "AIRFLOW_PLATFORM_SYNC_ROOT": str(self.sync),
                "AIRFLOW_PLATFORM_PACKAGES_DIR": str(self.packages),
                "AIRFLOW_PLATFORM_WHEEL_CACHE": str(self.cache),
            }
            | extra
        )
        argv = [CLI, "bootstrap", "--component", "worker", "--", sys.executable, "-c", CHECK]
        return _timed(argv, env)

    def new_container(self) -> None:
        shutil.rmtree(self.packages, ignore_errors=True)


def _mwaa_baseline(work: Path, runs: int) -> tuple[list[float], list[float]]:
    venv = work / "pip-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    # pip itself, from the same index, into the baseline's own interpreter.
    subprocess.run(
        [sys.executable, "-m", "uv", "pip", "install", "-q", "--python",
         str(venv / "bin" / "python"), "pip"],
        check=True, env=_base_env() | {"UV_PYTHON_DOWNLOADS": "never"},
    )  # fmt: skip
    constraints = work / "constraints.txt"
    frozen = subprocess.run(
        [sys.executable, "-c", "import importlib.metadata as m; print('\\n'.join(sorted("
         "{d.metadata['Name'].lower() + '==' + d.version for d in m.distributions()})))"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    constraints.write_text(frozen)
    reqs = work / "requirements.txt"
    reqs.write_text(REQUIREMENTS)
    # Only the public index, as MWAA has: no local wheel folders from this machine's pip.conf.
    env = _base_env() | {"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    times, pip_only = [], []
    for run in range(runs):
        target = work / f"pip-target-{run}"
        started = time.perf_counter()
        subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-cache-dir",
             "--target", str(target), "-r", str(reqs), "-c", str(constraints)],
            env=env, check=True,
        )  # fmt: skip
        pip_only.append(time.perf_counter() - started)
        subprocess.run(
            [sys.executable, "-c", CHECK], env=env | {"PYTHONPATH": str(target)}, check=True
        )
        times.append(time.perf_counter() - started)
    return times, pip_only


def _step_only(pod: Pod, runs: int, mode: str) -> list[float]:
    """The requirements step alone, in process (no CLI start-up, no exec)."""
    from airflow_platform.bootstrap.install import Installer
    from airflow_platform.bootstrap.settings import BootstrapSettings

    env = _base_env() | {
        "AIRFLOW_PLATFORM_SYNC_ROOT": str(pod.sync),
        "AIRFLOW_PLATFORM_PACKAGES_DIR": str(pod.packages),
        "AIRFLOW_PLATFORM_WHEEL_CACHE": str(pod.cache),
        "AIRFLOW_PLATFORM_REQUIREMENTS_CACHE": mode,
    }
    settings = BootstrapSettings.from_env(env)
    times = []
    for _ in range(runs):
        pod.new_container()
        started = time.perf_counter()
        Installer(settings, env, log=lambda _: None).install(settings.layout.requirements)
        times.append(time.perf_counter() - started)
    return times


def _fmt(times: list[float]) -> str:
    return f"median {statistics.median(times):6.2f} s  (min {min(times):.2f}, n={len(times)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-bootstrap-") as tmp:
        work = Path(tmp)
        print(f"requirements.txt: {len(REQUIREMENTS.splitlines())} packages; {args.runs} runs")
        cold: list[float] = []
        for run in range(max(1, args.runs // 2)):
            pod = Pod(work / f"cold-{run}")
            cold.append(pod.start())
        print(f"cold (empty cache)       {_fmt(cold)}")
        pod = Pod(work / "warm")
        pod.start()
        tree, wheels, restart = [], [], []
        for _ in range(args.runs):
            pod.new_container()
            tree.append(pod.start())
        for _ in range(args.runs):
            pod.new_container()
            wheels.append(pod.start(AIRFLOW_PLATFORM_REQUIREMENTS_CACHE="wheels"))
        for _ in range(args.runs):
            restart.append(pod.start())
        print(f"warm (tree cache)        {_fmt(tree)}")
        print(f"warm (wheel cache)       {_fmt(wheels)}")
        print(f"restart (same pod)       {_fmt(restart)}")
        no_reqs = Pod(work / "none")
        (no_reqs.sync / "requirements" / "requirements.txt").unlink()
        floor = [
            _timed([CLI, "bootstrap", "--component", "worker", "--", sys.executable, "-c",
                    "pass"], _base_env() | {"AIRFLOW_PLATFORM_SYNC_ROOT": str(no_reqs.sync)})
            for _ in range(args.runs)
        ]  # fmt: skip
        print(f"no requirements (floor)  {_fmt(floor)}")
        baseline, pip_only = _mwaa_baseline(work, max(2, args.runs // 2))
        print(f"MWAA baseline (pip -r)   {_fmt(baseline)}")
        step_tree = _step_only(pod, args.runs, "tree")
        step_wheels = _step_only(pod, args.runs, "wheels")
        print("requirements step alone (no CLI start-up, no import of the packages):")
        print(f"  warm (tree cache)      {_fmt(step_tree)}")
        print(f"  warm (wheel cache)     {_fmt(step_wheels)}")
        print(f"  MWAA pip install -r    {_fmt(pip_only)}")
        print(
            f"  ratio pip / warm (tree)  "
            f"{statistics.median(pip_only) / statistics.median(step_tree):5.1f}x"
        )
        warm = statistics.median(tree)
        print("whole start-up (entrypoint until the command has imported the packages):")
        print(
            f"  ratio baseline / warm (tree)   {statistics.median(baseline) / warm:5.1f}x  "
            "(goal >= 10x)"
        )
        print(
            f"  ratio baseline / warm (wheels) "
            f"{statistics.median(baseline) / statistics.median(wheels):5.1f}x"
        )
        print(f"  ratio cold / warm (tree)       {statistics.median(cold) / warm:5.1f}x")


if __name__ == "__main__":
    main()
