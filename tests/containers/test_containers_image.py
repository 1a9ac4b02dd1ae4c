"""The platform image as shipped, before any pod runs it."""

from __future__ import annotations

import json

from airflow_platform.image import podman

# Every .py of the virtualenv without its .pyc, less those that are not valid Python 3.11
# (test fixtures and templates some packages ship: no bytecode can exist for them).
UNCOMPILED = """
import json, pathlib, sysconfig, importlib.util
site = pathlib.Path(sysconfig.get_path("purelib"))
missing, files = [], 0
for source in site.rglob("*.py"):
    files += 1
    if pathlib.Path(importlib.util.cache_from_source(str(source))).exists():
        continue
    try:
        compile(source.read_bytes(), str(source), "exec")
    except (SyntaxError, ValueError):
        continue
    missing.append(str(source.relative_to(site)))
print(json.dumps({"files": files, "missing": missing}))
"""


def test_every_module_of_the_image_ships_its_bytecode(platform_image: str) -> None:
    """The pods' root filesystem is read-only, so Python cannot cache bytecode at run time:
    a module without it in the image is compiled again at every container start."""
    done = podman.run("run", "--rm", "--read-only", "--entrypoint", "python", platform_image,
                      "-c", UNCOMPILED, timeout=600)  # fmt: skip
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["files"] > 5000, found["files"]  # the walk saw the whole virtualenv
    assert found["missing"] == [], (len(found["missing"]), found["missing"][:20])
