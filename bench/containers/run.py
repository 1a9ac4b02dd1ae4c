"""Figures of the platform image and the chart's pods as containers (printed, never asserted):

1. base image and platform image build time, fresh (from nothing: debootstrap, PyPI) and
   cached (inputs unchanged), and their sizes;
2. time from the first `podman kube play` to every component Ready, next to `local up`
   (cold state) on the same machine;
3. the resident memory of each component's containers.

Run: .venv/bin/python bench/containers/run.py [--runs 3] [--skip-fresh] [--skip-local]
(`--skip-fresh` reuses cached images: the fresh build takes minutes.) The containers and
`local up` start alternately (bench/_runner.py), --runs times each; the fresh build runs
once (minutes of debootstrap and PyPI). Writes bench/results/containers.txt.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from airflow_platform.image.build import ensure_platform
from airflow_platform.image.podman import image_size
from airflow_platform.local.platform import LocalPlatform

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "tests" / "containers"), str(REPO / "bench")]

from _runner import Report, interleave  # noqa: E402
from containers_stack import Stack  # noqa: E402

REPORT = Report("containers")
say = REPORT.say


def builds(fresh: bool) -> str:
    say("== images")
    if fresh:
        base, built = ensure_platform(progress=lambda _m: None, fresh=True)
        say(f"    fresh:  base {base.seconds:.0f} s, platform {built.seconds:.0f} s")
    cached = [ensure_platform(progress=lambda _m: None) for _ in range(3)]
    base, built = cached[-1]
    REPORT.figure("containers.cached_build", "build found cached (base + platform)",
                  [b.seconds + p.seconds for b, p in cached])  # fmt: skip
    REPORT.value("containers.base_mb", "base image size", image_size(base.tag) / 1e6, "MB", 0)
    REPORT.value("containers.platform_mb", "platform image size", image_size(built.tag) / 1e6,
                 "MB", 0)  # fmt: skip
    return built.tag


def containers(tag: str, show_rss: bool) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="airflow-platform-bench-containers-"))
    work.chmod(0o755)  # PostgreSQL runs as `nobody` when we are root
    stack = Stack(work=work, image=tag, progress=lambda _m: None)
    try:
        stack.up(timeout=900)
        figures = {"ready": stack.timings["ready"], "job": stack.timings["job"]}
        for plan in [p for p in stack.plans if p.kind == "Deployment"]:
            parts = {c: stack.rss_bytes(plan.container_name(c)) / 1e6 for c in plan.containers}
            if show_rss:
                detail = ", ".join(f"{c} {v:.0f}" for c, v in parts.items())
                say(f"      RSS MB {plan.component:14} {sum(parts.values()):6.0f}  ({detail})")
            figures[f"rss_{plan.component}"] = sum(parts.values())
        return figures
    finally:
        stack.down()
        shutil.rmtree(work, ignore_errors=True)


def local_up() -> float:
    root = Path(tempfile.mkdtemp(prefix="airflow-platform-bench-local-"))
    root.chmod(0o755)
    lp = LocalPlatform(root / "state")
    try:
        began = time.monotonic()
        lp.up(timeout=900)
        return time.monotonic() - began
    finally:
        lp.down()
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-fresh", action="store_true")
    parser.add_argument("--skip-local", action="store_true")
    args = parser.parse_args()
    tag = builds(fresh=not args.skip_fresh)
    variants = {"containers": lambda: containers(tag, show_rss=True)}
    if not args.skip_local:
        variants["local up"] = local_up
    say("== kube play -> every component Ready, against local up (processes)")
    runs = interleave(variants, args.runs, say)
    c = runs["containers"]
    if "local up" in runs:
        REPORT.ratio("containers.ratio_local", "containers / local up (cold)", c["ready"],
                     runs["local up"]["seconds"])  # fmt: skip
        local = runs["local up"]["seconds"]
        REPORT.figure("containers.local_up", "local up, cold, processes", local, digits=0)
    REPORT.figure("containers.ready", "kube play -> every component Ready", c["ready"], digits=0)
    REPORT.figure("containers.job", "of it the migrations Job", c["job"], digits=0)
    for key in sorted(k for k in c if k.startswith("rss_")):
        REPORT.figure(f"containers.{key}", f"resident memory of {key[4:]} (every container)",
                      c[key], unit="MB", digits=0)  # fmt: skip
    REPORT.write()


if __name__ == "__main__":
    main()
