"""Figures of the platform image and the chart's pods as containers (printed, never asserted):

1. base image and platform image build time, fresh (from nothing: debootstrap, PyPI) and
   cached (inputs unchanged), and their sizes;
2. time from the first `podman kube play` to every component Ready, next to `local up`
   (cold state) on the same machine;
3. the resident memory of each component's containers.

Run: .venv/bin/python bench/containers/run.py [--skip-fresh] [--skip-local]
(`--skip-fresh` reuses cached images: the fresh build takes minutes.)
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
sys.path.insert(0, str(REPO / "tests" / "containers"))

from containers_stack import Stack  # noqa: E402


def say(msg: str) -> None:
    print(msg, flush=True)


def builds(fresh: bool) -> str:
    say("== images")
    if fresh:
        base, built = ensure_platform(progress=lambda _m: None, fresh=True)
        say(f"    fresh:  base {base.seconds:.0f} s, platform {built.seconds:.0f} s")
    base, built = ensure_platform(progress=lambda _m: None)
    say(f"    cached: base {base.seconds:.2f} s, platform {built.seconds:.2f} s")
    say(f"    sizes:  base {image_size(base.tag) / 1e6:.0f} MB, platform "
        f"{image_size(built.tag) / 1e6:.0f} MB")  # fmt: skip
    return built.tag


def containers(tag: str) -> float:
    work = Path(tempfile.mkdtemp(prefix="airflow-platform-bench-containers-"))
    work.chmod(0o755)  # PostgreSQL runs as `nobody` when we are root
    stack = Stack(work=work, image=tag, progress=lambda _m: None)
    try:
        stack.up(timeout=900)
        ready = stack.timings["ready"]
        say("== containers")
        say(f"    kube play -> every component Ready: {ready:.0f} s "
            f"(migrations Job {stack.timings['job']:.0f} s of it)")  # fmt: skip
        say("    RSS per component (MB, every container of the pod):")
        for plan in [p for p in stack.plans if p.kind == "Deployment"]:
            parts = {c: stack.rss_bytes(plan.container_name(c)) / 1e6 for c in plan.containers}
            detail = ", ".join(f"{c} {v:.0f}" for c, v in parts.items())
            say(f"      {plan.component:14} {sum(parts.values()):6.0f}  ({detail})")
        return ready
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
    parser.add_argument("--skip-fresh", action="store_true")
    parser.add_argument("--skip-local", action="store_true")
    args = parser.parse_args()
    tag = builds(fresh=not args.skip_fresh)
    ready = containers(tag)
    if not args.skip_local:
        local = local_up()
        say(f"    local up (cold, processes): {local:.0f} s; containers/local = "
            f"{ready / local:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
