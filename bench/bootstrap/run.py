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

Every figure is measured --runs times, all of them interleaved (bench/_runner.py).
Run: .venv/bin/python bench/bootstrap/run.py [--runs 5]
Writes bench/results/bootstrap.txt.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import airflow_platform

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _runner import Report, interleave

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


class MwaaBaseline:
    """MWAA's way: `pip install -r requirements.txt -c constraints` into a fresh target at
    every start, pip's cache empty, then the same import."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.venv = work / "pip-venv"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(self.venv)], check=True)
        # pip itself, from the same index, into the baseline's own interpreter, precompiled
        # as in any image (else every run would also compile pip's ~300 modules).
        subprocess.run(
            [sys.executable, "-m", "uv", "pip", "install", "-q", "--compile-bytecode",
             "--python", str(self.venv / "bin" / "python"), "pip"],
            check=True, env=_base_env() | {"UV_PYTHON_DOWNLOADS": "never"},
        )  # fmt: skip
        self.constraints = work / "constraints.txt"
        frozen = subprocess.run(
            [sys.executable, "-c", "import importlib.metadata as m; print('\\n'.join(sorted("
             "{d.metadata['Name'].lower() + '==' + d.version for d in m.distributions()})))"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        self.constraints.write_text(frozen)
        self.reqs = work / "requirements.txt"
        self.reqs.write_text(REQUIREMENTS)
        # Only the public index, as MWAA has: no local wheel folders from this machine's
        # pip.conf.
        self.env = _base_env() | {"PIP_CONFIG_FILE": os.devnull,
                                  "PIP_DISABLE_PIP_VERSION_CHECK": "1"}  # fmt: skip
        self.runs = 0

    def start(self) -> dict[str, float]:
        """(pip install + import, pip install alone, the import alone) of one start."""
        self.runs += 1
        target = self.work / f"pip-target-{self.runs}"
        started = time.perf_counter()
        subprocess.run(
            [str(self.venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-cache-dir",
             "--target", str(target), "-r", str(self.reqs), "-c", str(self.constraints)],
            env=self.env, check=True,
        )  # fmt: skip
        installed = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", CHECK], env=self.env | {"PYTHONPATH": str(target)}, check=True
        )
        done = time.perf_counter()
        return {"seconds": done - started, "pip": installed - started, "import": done - installed}


def _step_once(pod: Pod, mode: str) -> float:
    """The requirements step alone, in process (no CLI start-up, no exec), into a new
    container's empty packages dir."""
    from airflow_platform.bootstrap.requirements_step import install_requirements
    from airflow_platform.bootstrap.settings import BootstrapSettings

    env = pod.env(AIRFLOW_PLATFORM_REQUIREMENTS_CACHE=mode)
    settings = BootstrapSettings.from_env(env)
    pod.new_container()
    started = time.perf_counter()
    install_requirements(settings, env, log=lambda _: None)
    return time.perf_counter() - started


def _digest_check_once(pod: Pod) -> dict[str, float]:
    """Checking a restored tree against the digests written at publish (part of the tree
    step above): the time, and how many files it hashes."""
    from airflow_platform.bootstrap.tree_cache import FILES, verify_digests

    pod.new_container()
    pod.start("pass")  # the packages dir holds a restored tree
    [tree] = [p for p in (pod.cache / "trees").iterdir() if not p.name.startswith(".")]
    started = time.perf_counter()
    verify_digests(tree / FILES, pod.packages)
    return {"seconds": time.perf_counter() - started,
            "files": float(len(json.loads((tree / FILES).read_text())))}  # fmt: skip


def _compile_platform() -> None:
    """airflow_platform's own bytecode, as `pip install` writes it into the image (this
    checkout is an editable install, and PYTHONDONTWRITEBYTECODE may be set)."""
    package = Path(airflow_platform.__file__).parent
    compileall.compile_dir(str(package), quiet=1)


def _fresh(pod: Pod, measure: Callable[[], float]) -> Callable[[], float]:
    """`measure` in a new container of `pod` (its packages dir empty)."""

    def run() -> float:
        pod.new_container()
        return measure()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of every figure")
    args = parser.parse_args()
    report = Report("bootstrap")
    _compile_platform()
    with tempfile.TemporaryDirectory(prefix="bench-bootstrap-") as tmp:
        work = Path(tmp)
        report.say(f"requirements.txt: {len(REQUIREMENTS.splitlines())} packages; "
                   f"{args.runs} interleaved runs of every figure")  # fmt: skip
        pod = Pod(work / "warm")
        pod.start()  # fills the cache
        no_reqs = Pod(work / "none")
        (no_reqs.sync / "requirements" / "requirements.txt").unlink()
        baseline = MwaaBaseline(work)
        colds = iter(range(10_000))
        env = _base_env()

        def restart() -> float:
            if not pod.packages.exists():
                pod.start()
            return pod.start()

        def import_alone() -> float:
            if not pod.packages.exists():
                pod.start()
            argv = [sys.executable, "-c", CHECK]
            return _timed(argv, env | {"PYTHONPATH": str(pod.packages)})

        runs = interleave(
            {
                "cold": lambda: Pod(work / f"cold-{next(colds)}").start(),
                "warm (tree)": _fresh(pod, pod.start),
                "warm (wheels)": _fresh(
                    pod, lambda: pod.start(AIRFLOW_PLATFORM_REQUIREMENTS_CACHE="wheels")
                ),
                "restart": restart,
                "MWAA baseline": baseline.start,
                "python alone": lambda: _timed([sys.executable, "-c", "pass"], env),
                "no requirements.txt": lambda: no_reqs.start("pass"),
                "warm (tree), no import": _fresh(pod, lambda: pod.start("pass")),
                "import alone": import_alone,
                "step, tree": lambda: _step_once(pod, "tree"),
                "step, wheels": lambda: _step_once(pod, "wheels"),
                "digest check": lambda: _digest_check_once(pod),
            },
            args.runs,
            report.say,
        )

    def ms(name: str, figure: str = "seconds") -> list[float]:
        return [1000 * v for v in runs[name][figure]]

    def show(key: str, label: str, name: str, figure: str = "seconds") -> None:
        report.figure(f"bootstrap.{key}", label, ms(name, figure), unit="ms", digits=0)

    def ratio(key: str, label: str, slower: list[float], faster: list[float]) -> None:
        report.ratio(f"bootstrap.{key}", label, slower, faster)

    say = report.say
    say("\n== figures (medians; spread min-max)")
    ratio("ratio.baseline_warm", "MWAA baseline / warm (tree)", ms("MWAA baseline"),
          ms("warm (tree)"))  # fmt: skip
    ratio("ratio.baseline_wheels", "MWAA baseline / warm (wheels)", ms("MWAA baseline"),
          ms("warm (wheels)"))  # fmt: skip
    ratio("ratio.cold_warm", "cold / warm (tree)", ms("cold"), ms("warm (tree)"))
    ratio("ratio.pip_step", "pip install / requirements step (tree)", ms("MWAA baseline", "pip"),
          ms("step, tree"))  # fmt: skip
    say("whole start-up (entrypoint until the command has imported the packages):")
    show("cold", "cold (empty cache)", "cold")
    show("warm", "warm (tree cache)", "warm (tree)")
    show("warm_wheels", "warm (wheel cache)", "warm (wheels)")
    show("restart", "restart (same pod)", "restart")
    show("baseline", "MWAA baseline (pip install -r, then the import)", "MWAA baseline")
    say("where the time goes:")
    show("python", "python start-up alone", "python alone")
    show("no_requirements", "entrypoint, no requirements.txt", "no requirements.txt")
    show("warm_no_import", "entrypoint, warm (tree), no import", "warm (tree), no import")
    show("import", "the import alone (restored tree)", "import alone")
    show("baseline_pip", "MWAA, pip install -r alone", "MWAA baseline", "pip")
    show("baseline_import", "MWAA, the import alone (after pip)", "MWAA baseline", "import")
    show("step_tree", "requirements step in process, tree", "step, tree")
    show("step_wheels", "requirements step in process, wheels", "step, wheels")
    files = int(runs["digest check"]["files"][0])
    show("digest", f"digest check of the tree ({files} files)", "digest check")
    say("goal: MWAA baseline / warm (tree) >= 10x")
    report.write()


if __name__ == "__main__":
    main()
