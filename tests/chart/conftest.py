"""Render the chart with the real helm binary and hand the tests the parsed objects.

Renders are cached per values set for the whole test run: `helm template` is fast, but the
specification tests ask for the same few renderings many times.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

CHART = Path(__file__).resolve().parents[2] / "charts" / "airflow-platform"
CI_DIR = CHART / "ci"
DEFAULT_VALUES = CI_DIR / "default-values.yaml"
RELEASE = "airflow"
NAMESPACE = "airflow"
AIRFLOW_COMPONENTS = ("scheduler", "dag-processor", "triggerer", "api-server", "worker")

Obj = dict[str, Any]
# libyaml parses a rendering about ten times faster than the pure-Python loader.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def component_of(obj: Obj) -> str | None:
    return obj.get("metadata", {}).get("labels", {}).get("app.kubernetes.io/component")


def pod_spec(obj: Obj) -> Obj:
    """The pod spec of a Deployment, Job or Pod."""
    if obj["kind"] == "Pod":
        return obj["spec"]
    return obj["spec"]["template"]["spec"]


def containers(obj: Obj, init: bool = True) -> list[Obj]:
    spec = pod_spec(obj)
    return (spec.get("initContainers", []) if init else []) + spec["containers"]


def container(obj: Obj, name: str) -> Obj:
    for c in containers(obj):
        if c["name"] == name:
            return c
    raise AssertionError(f"{obj['kind']}/{obj['metadata']['name']} has no container {name!r}")


def env_of(c: Obj) -> dict[str, Obj]:
    """A container's env entries by name (the whole entry, so valueFrom stays visible)."""
    entries = c.get("env", [])
    names = [e["name"] for e in entries]
    assert len(names) == len(set(names)), f"duplicate env names in {c['name']}: {names}"
    return {e["name"]: e for e in entries}


def env_values(c: Obj) -> dict[str, str]:
    return {k: v["value"] for k, v in env_of(c).items() if "value" in v}


@dataclass
class Rendering:
    """The objects one `helm template` printed."""

    objects: list[Obj]
    text: str
    notes: str = ""
    by_key: dict[tuple[str, str | None], list[Obj]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for obj in self.objects:
            self.by_key.setdefault((obj["kind"], component_of(obj)), []).append(obj)

    def all(self, kind: str, component: str | None = None) -> list[Obj]:
        if component is None:
            return [o for o in self.objects if o["kind"] == kind]
        return self.by_key.get((kind, component), [])

    def one(self, kind: str, component: str) -> Obj:
        found = self.all(kind, component)
        assert len(found) == 1, f"expected one {kind} of {component}, found {len(found)}"
        return found[0]

    def workloads(self) -> list[Obj]:
        return [o for o in self.objects if o["kind"] in ("Deployment", "Job", "Pod")]


class HelmError(Exception):
    """helm refused the values or the templates failed; .stderr holds helm's message."""

    def __init__(self, stderr: str) -> None:
        super().__init__(stderr)
        self.stderr = stderr


def _helm_template(helm: str, values: dict[str, Any], files: tuple[str, ...]) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        yaml.safe_dump(values, handle)
        extra = handle.name
    try:
        args = [helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE]
        for f in files:
            args += ["-f", str(CI_DIR / f) if not Path(f).is_absolute() else f]
        args += ["-f", extra]
        done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    finally:
        Path(extra).unlink()
    if done.returncode != 0:
        raise HelmError(done.stderr)
    return done.stdout


@pytest.fixture(scope="session")
def render(helm_bin: str) -> Iterator[Callable[..., Rendering]]:
    """render(values=None, files=("default-values.yaml",)) -> Rendering (cached).

    `files` are ci/ value files (or absolute paths) layered in order; `values` goes last.
    Raises HelmError when helm refuses.
    """
    cache: dict[str, Rendering | HelmError] = {}

    def _render(
        values: dict[str, Any] | None = None, files: tuple[str, ...] = ("default-values.yaml",)
    ) -> Rendering:
        key = json.dumps([values or {}, list(files)], sort_keys=True)
        if key not in cache:
            try:
                text = _helm_template(helm_bin, values or {}, files)
                objects = [d for d in yaml.load_all(text, Loader=_LOADER) if d]
                cache[key] = Rendering(objects=objects, text=text)
            except HelmError as error:
                cache[key] = error
        result = cache[key]
        if isinstance(result, HelmError):
            raise result
        return result

    yield _render


@pytest.fixture(scope="session")
def default(render: Callable[..., Rendering]) -> Rendering:
    """The minimal installation: only the required values."""
    return render()


@pytest.fixture(scope="session")
def eks(render: Callable[..., Rendering]) -> Rendering:
    """The example EKS installation (ci/eks-values.yaml)."""
    return render(files=("eks-values.yaml",))


def ci_files() -> list[str]:
    return sorted(p.name for p in CI_DIR.glob("*.yaml"))
