"""Start-up cost of requirements.txt: this entrypoint (cold and warm) vs MWAA's way.

Each "start" is a fresh container as Kubernetes runs it: an empty packages dir, then
`airflow-platform bootstrap --component worker -- python -c ...` up to the exec'd command
importing every package. Figures:

  cold            empty packages dir, empty cache: check, resolve, download, install
  warm (tree)     empty packages dir, cache holds the installed tree (the default)
  warm (wheels)   empty packages dir, cache holds the resolution and uv's wheels
  restart         the packages dir still holds the install (container restart in a pod)
  MWAA baseline   `pip install -r requirements.txt -c constraints` at every start into a
                  fresh target with pip's cache empty (MWAA containers start from
                  scratch), then the same import

Both sides run their tools as an image ships them: pip and airflow_platform with their
bytecode compiled (pip install does that in an image), so neither pays for compiling its
own code at every start. A breakdown shows where a warm start's time goes.

Run: .venv/bin/python bench/bootstrap/run.py [--runs N]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import airflow_platform

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


def _repeat(runs: int, measure: Callable[[], float], before: Callable[[], None] | None = None):
    times = []
    for _ in range(runs):
        if before:
            before()
        times.append(measure())
    return times


class Pod:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.sync = root / "sync"
        (self.sync / "requirements").mkdir(parents=True)
        (self.sync / "requirements" / "requirements.txt").write_text(REQUIREMENTS)
        self.cache = root / "wheel-cache"
        self.packages = root / "packages"

    def env(self, **extra: str) -> dict[str, str]:
        return (
            _base_env()
            | {
                "AIRFLOW_PLATFORM_SYNC_ROOT": str(self.sync),
                "AIRFLOW_PLATFORM_PACKAGES_DIR": str(self.packages),
                "AIRFLOW_PLATFORM_WHEEL_CACHE": str(self.cache),
            }
            | extra
        )

    def start(self, code: str = CHECK, **extra: str) -> float:
        argv = [CLI, "bootstrap", "--component", "worker", "--", sys.executable, "-c", code]
        return _timed(argv, self.env(**extra))

    def new_container(self) -> None:
        shutil.rmtree(self.packages, ignore_errors=True)


def _mwaa_baseline(work: Path, runs: int) -> tuple[list[float], list[float], list[float]]:
    """(pip install + import, pip install alone, the import alone) per start."""
    venv = work / "pip-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    # pip itself, from the same index, into the baseline's own interpreter, precompiled as
    # in any image (else every run would also compile pip's ~300 modules).
    subprocess.run(
        [sys.executable, "-m", "uv", "pip", "install", "-q", "--compile-bytecode", "--python",
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
    times, pip_only, import_only = [], [], []
    for run in range(runs):
        target = work / f"pip-target-{run}"
        started = time.perf_counter()
        subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-cache-dir",
             "--target", str(target), "-r", str(reqs), "-c", str(constraints)],
            env=env, check=True,
        )  # fmt: skip
        installed = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", CHECK], env=env | {"PYTHONPATH": str(target)}, check=True
        )
        done = time.perf_counter()
        times.append(done - started)
        pip_only.append(installed - started)
        import_only.append(done - installed)
    return times, pip_only, import_only


def _step_only(pod: Pod, runs: int, mode: str) -> list[float]:
    """The requirements step alone, in process (no CLI start-up, no exec)."""
    from airflow_platform.bootstrap.requirements_step import install_requirements
    from airflow_platform.bootstrap.settings import BootstrapSettings

    env = pod.env(AIRFLOW_PLATFORM_REQUIREMENTS_CACHE=mode)
    settings = BootstrapSettings.from_env(env)

    def once() -> float:
        started = time.perf_counter()
        install_requirements(settings, env, log=lambda _: None)
        return time.perf_counter() - started

    return _repeat(runs, once, pod.new_container)


def _digest_check_only(pod: Pod, runs: int) -> tuple[list[float], int]:
    """Checking a restored tree against the digests written at publish (part of the tree
    step above): the time, and how many files it hashes."""
    from airflow_platform.bootstrap.tree_cache import FILES, verify_digests

    pod.start("pass")  # the packages dir holds a restored tree
    [tree] = [p for p in (pod.cache / "trees").iterdir() if not p.name.startswith(".")]
    files = len(json.loads((tree / FILES).read_text()))

    def once() -> float:
        started = time.perf_counter()
        verify_digests(tree / FILES, pod.packages)
        return time.perf_counter() - started

    return _repeat(runs, once), files


def _median(times: list[float]) -> float:
    return statistics.median(times)


def _fmt(times: list[float]) -> str:
    return f"median {_median(times) * 1000:7.0f} ms  (min {min(times) * 1000:.0f}, n={len(times)})"


def _compile_platform() -> None:
    """airflow_platform's own bytecode, as `pip install` writes it into the image (this
    checkout is an editable install, and PYTHONDONTWRITEBYTECODE may be set)."""
    package = Path(airflow_platform.__file__).parent
    compileall.compile_dir(str(package), quiet=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of the slow figures")
    args = parser.parse_args()
    runs, fast_runs = args.runs, args.runs * 4  # sub-second figures are noisier: more runs
    _compile_platform()
    with tempfile.TemporaryDirectory(prefix="bench-bootstrap-") as tmp:
        work = Path(tmp)
        print(
            f"requirements.txt: {len(REQUIREMENTS.splitlines())} packages; {runs} runs "
            f"({fast_runs} for sub-second figures)"
        )
        print("whole start-up (entrypoint until the command has imported the packages):")
        cold = [Pod(work / f"cold-{run}").start() for run in range(max(1, runs // 2))]
        print(f"  cold (empty cache)         {_fmt(cold)}")
        pod = Pod(work / "warm")
        pod.start()
        tree = _repeat(fast_runs, pod.start, pod.new_container)
        print(f"  warm (tree cache)          {_fmt(tree)}")
        wheels = _repeat(
            fast_runs, lambda: pod.start(AIRFLOW_PLATFORM_REQUIREMENTS_CACHE="wheels"),
            pod.new_container,
        )  # fmt: skip
        print(f"  warm (wheel cache)         {_fmt(wheels)}")
        restart = _repeat(fast_runs, pod.start)
        print(f"  restart (same pod)         {_fmt(restart)}")
        baseline, pip_only, pip_import = _mwaa_baseline(work, runs)
        print(f"  MWAA baseline (pip -r)     {_fmt(baseline)}")

        print("where the time goes:")
        env = _base_env()
        python_alone = _repeat(fast_runs, lambda: _timed([sys.executable, "-c", "pass"], env))
        print(f"  python start-up alone                  {_fmt(python_alone)}")
        no_reqs = Pod(work / "none")
        (no_reqs.sync / "requirements" / "requirements.txt").unlink()
        floor = _repeat(fast_runs, lambda: no_reqs.start("pass"))
        print(f"  entrypoint, no requirements.txt        {_fmt(floor)}")
        warm_no_import = _repeat(fast_runs, lambda: pod.start("pass"), pod.new_container)
        print(f"  entrypoint, warm (tree), no import     {_fmt(warm_no_import)}")
        pod.start()
        ours_import = _repeat(
            fast_runs,
            lambda: _timed([sys.executable, "-c", CHECK], env | {"PYTHONPATH": str(pod.packages)}),
        )
        print(f"  the import alone (restored tree)       {_fmt(ours_import)}")
        print(f"  MWAA: pip install -r alone             {_fmt(pip_only)}")
        print(f"  MWAA: the import alone (after pip)     {_fmt(pip_import)}")
        step_tree = _step_only(pod, fast_runs, "tree")
        step_wheels = _step_only(pod, runs, "wheels")
        print(f"  requirements step in process, tree     {_fmt(step_tree)}")
        print(f"  requirements step in process, wheels   {_fmt(step_wheels)}")
        digest_check, files = _digest_check_only(pod, fast_runs)
        print(f"  digest check of the tree ({files} files) {_fmt(digest_check)}")

        warm = _median(tree)
        print("ratios:")
        print(f"  baseline / warm (tree)       {_median(baseline) / warm:5.1f}x  (goal >= 10x)")
        print(f"  baseline / warm (wheels)     {_median(baseline) / _median(wheels):5.1f}x")
        print(f"  cold / warm (tree)           {_median(cold) / warm:5.1f}x")
        print(f"  pip install / step (tree)    {_median(pip_only) / _median(step_tree):5.1f}x")


if __name__ == "__main__":
    main()
