"""The Argo CD manifests install what the chart renders: the single Application's
valuesObject, and each Application the ApplicationSet generates from an environments
folder (its git files generator, evaluated here over examples/gitops/environments)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import CHART

pytestmark = pytest.mark.chart

REPO = CHART.parents[1]
ARGOCD = REPO / "manifests" / "argocd"
ENVIRONMENTS = REPO / "examples" / "gitops"  # laid out as the environments repository
GO_FIELD = re.compile(r"\{\{\s*\.([A-Za-z0-9_.]+)\s*\}\}")


def _load(name: str) -> dict[str, Any]:
    return yaml.safe_load((ARGOCD / name).read_text())


def _render_template(node: Any, params: dict[str, Any]) -> Any:
    """The Go-template fields the ApplicationSet uses ({{ .a.b }}), filled from params;
    any other template construct fails the test (it would need Argo CD to evaluate)."""
    if isinstance(node, dict):
        return {k: _render_template(v, params) for k, v in node.items()}
    if isinstance(node, list):
        return [_render_template(v, params) for v in node]
    if not isinstance(node, str):
        return node

    def field(match: re.Match[str]) -> str:
        value: Any = params
        for part in match.group(1).split("."):
            value = value[part]  # missingkey=error, as the ApplicationSet asks
        return str(value)

    out = GO_FIELD.sub(field, node)
    assert "{{" not in out, f"unsupported template in {node!r}"
    return out


def generated_applications() -> list[tuple[Path, dict[str, Any]]]:
    appset = _load("environments-applicationset.yaml")
    (generator,) = appset["spec"]["generators"]
    (files,) = generator["git"]["files"]
    found = []
    for path in sorted(ENVIRONMENTS.glob(files["path"])):
        relative = path.relative_to(ENVIRONMENTS)
        params = yaml.safe_load(path.read_text())
        params["path"] = {"path": str(relative.parent), "filename": relative.name}
        found.append((path, _render_template(appset["spec"]["template"], params)))
    return found


def test_the_generator_finds_every_example_environment() -> None:
    apps = generated_applications()
    assert [p.name for p, _ in apps] == ["analytics-dev.yaml", "analytics-prod.yaml"]
    names = [a["metadata"]["name"] for _, a in apps]
    namespaces = [a["spec"]["destination"]["namespace"] for _, a in apps]
    assert names == ["airflow-analytics-dev", "airflow-analytics-prod"]
    assert len(set(namespaces)) == len(namespaces), "two environments share a namespace"


@pytest.mark.parametrize("index", [0, 1], ids=["analytics-dev", "analytics-prod"])
def test_each_generated_application_renders_through_the_chart(render, index: int) -> None:
    path, app = generated_applications()[index]
    chart_source, values_source = app["spec"]["sources"]
    assert (REPO / chart_source["path"]) == CHART
    (value_file,) = chart_source["helm"]["valueFiles"]
    ref = f"${values_source['ref']}/"
    assert value_file.startswith(ref)
    assert ENVIRONMENTS / value_file.removeprefix(ref) == path

    rendering = render(chart_source["helm"]["valuesObject"], files=(str(path),))
    migrations = rendering.one("Job", "migrations")["metadata"]["annotations"]
    assert migrations["argocd.argoproj.io/hook"] == "Sync"
    assert int(migrations["argocd.argoproj.io/sync-wave"]) < 0
    assert not any(k.startswith("helm.sh/hook") for k in migrations)
    env = yaml.safe_load(path.read_text())
    schedulers = rendering.one("Deployment", "scheduler")["spec"]["replicas"]
    assert schedulers == env.get("scheduler", {}).get("replicas", 2)
    if env.get("snapshot", {}).get("enabled"):
        snapshot = rendering.one("Job", "snapshot")["metadata"]["annotations"]
        assert snapshot["argocd.argoproj.io/hook"] == "PreSync"


def test_the_single_application_renders_its_values_object(render) -> None:
    app = _load("airflow-platform.yaml")
    rendering = render(app["spec"]["source"]["helm"]["valuesObject"], files=())
    hook = rendering.one("Job", "migrations")["metadata"]["annotations"]
    assert hook["argocd.argoproj.io/hook"] == "Sync"
    text = (ARGOCD / "airflow-platform.yaml").read_text()
    assert "PreSync" not in text, "the chart renders the migrations as a Sync hook"
