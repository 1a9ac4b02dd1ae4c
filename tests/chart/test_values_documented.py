"""values.yaml comments every value, and the chart README's table lists every value."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import yaml

from .conftest import CHART

pytestmark = pytest.mark.chart

KEY_LINE = re.compile(r"^(\s*)([A-Za-z0-9_.]+):(.*)$")


def leaf_paths(node: object, prefix: str = "") -> Iterator[str]:
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from leaf_paths(value, f"{prefix}.{key}" if prefix else key)
    else:
        yield prefix


def test_every_value_is_commented() -> None:
    """A value is documented when a comment sits right above it or above one of its parents."""
    stack: list[tuple[int, str, bool]] = []
    previous_is_comment = False
    undocumented = []
    for line in (CHART / "values.yaml").read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            previous_is_comment = True
            continue
        match = KEY_LINE.match(line)
        if match:
            indent, key = len(match.group(1)), match.group(2)
            while stack and stack[-1][0] >= indent:
                stack.pop()
            documented = previous_is_comment or any(d for _, _, d in stack)
            is_value = match.group(3).split("#")[0].strip() != ""
            if is_value and not documented:
                undocumented.append(".".join([k for _, k, _ in stack] + [key]))
            stack.append((indent, key, documented))
        previous_is_comment = False
    assert undocumented == []


def test_readme_table_lists_every_value_and_nothing_else() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    readme = (CHART / "README.md").read_text()
    listed = set(re.findall(r"^\| `([^`]+)` \|", readme, re.MULTILINE))
    leaves = set(leaf_paths(values))
    missing = {
        leaf
        for leaf in leaves
        if not any(leaf == key or leaf.startswith(f"{key}.") for key in listed)
    }
    assert missing == set()
    unknown = {
        key
        for key in listed
        if not any(leaf == key or leaf.startswith(f"{key}.") for leaf in leaves)
    }
    assert unknown == set()


def test_readme_names_the_eks_prerequisites() -> None:
    readme = (CHART / "README.md").read_text()
    for prerequisite in (
        "KEDA",
        "AWS Load Balancer Controller",
        "Aurora PostgreSQL",
        "SQS",
        "versioning",
        "IRSA",
        "helm upgrade --install",
    ):
        assert prerequisite in readme
