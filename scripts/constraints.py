#!/usr/bin/env python3
"""Write platform/constraints.txt, the exact pins the platform image installs, from uv.lock.

The image runs what the tests run: Airflow, its providers and this package's dependencies
at the versions locked in uv.lock (the `airflow` dependency group plus the project's own
dependencies; no test tools). Official Airflow constraint files live on GitHub, which a
build cannot rely on reaching; the lock is the one source of versions.

    python scripts/constraints.py          # regenerate (also: make constraints)
    python scripts/constraints.py --check  # exit 1 when the committed file is stale
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET = REPO / "platform" / "constraints.txt"
HEADER = (
    "# The pins platform/Dockerfile and the base image install: generated from uv.lock by\n"
    "# `make constraints` (scripts/constraints.py); do not edit by hand.\n"
)
EXPORT_ARGS = [
    "export",
    "--frozen",
    "--no-hashes",
    "--no-default-groups",
    "--group",
    "airflow",
    "--no-emit-project",
    "--no-annotate",
    "--no-header",
]


def find_uv() -> str:
    for candidate in (REPO / ".cache" / "tools" / "bin" / "uv", shutil.which("uv")):
        if candidate and os.access(candidate, os.X_OK):
            return str(candidate)
    sys.exit("uv not found: run ./scripts/bootstrap.sh (it installs uv into .cache/tools/bin)")


def render() -> str:
    result = subprocess.run(
        [find_uv(), *EXPORT_ARGS, "--python-preference", "only-system"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        sys.exit(f"`uv export` failed (is uv.lock in step with pyproject.toml?):\n{result.stderr}")
    return HEADER + result.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    wanted = render()
    if args.check:
        current = TARGET.read_text() if TARGET.exists() else ""
        if current != wanted:
            print(
                f"{TARGET.relative_to(REPO)} is out of step with uv.lock: run `make constraints`",
                file=sys.stderr,
            )
            return 1
        return 0
    TARGET.write_text(wanted)
    print(f"wrote {TARGET.relative_to(REPO)} ({wanted.count(chr(10)) - 2} pins)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
