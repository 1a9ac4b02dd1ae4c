"""statsd_exporter's glob mapping, applied in Python (the exporter binary is not installable
here: neither Debian nor PyPI ships it).

Documented behaviour reproduced: a `match` is a dot-separated glob whose `*` stands for any
characters inside one segment; the mappings are tried in file order and the first match
wins; `$1`/`${1}` in `name` and label values are the `*` captures; `action: drop` discards
the metric; a name no mapping matches is translated by replacing every character outside
[a-zA-Z0-9_] with `_` (and a leading digit gets a `_` prefix).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml


@dataclass(frozen=True)
class Mapped:
    name: str
    labels: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern[str]
    name: str
    labels: dict[str, str]
    drop: bool


def _compile(match: str) -> re.Pattern[str]:
    parts = (re.escape(segment).replace(r"\*", "([^.]*)") for segment in match.split("."))
    return re.compile(r"\.".join(parts) + r"\Z")


def _expand(template: str, groups: tuple[str, ...]) -> str:
    return re.sub(r"\$\{?(\d+)\}?", lambda m: groups[int(m.group(1)) - 1], template)


def default_name(statsd_name: str) -> str:
    name = re.sub(r"[^a-zA-Z0-9_]", "_", statsd_name)
    return f"_{name}" if name[:1].isdigit() else name


class Mapper:
    def __init__(self, config: dict) -> None:
        assert config.get("defaults", {}).get("glob_disable_ordering") is not True
        self.rules = [
            _Rule(
                pattern=_compile(m["match"]),
                name=m.get("name", ""),
                labels=m.get("labels") or {},
                drop=m.get("action") == "drop",
            )
            for m in config["mappings"]
            if m.get("match_type", "glob") == "glob"
        ]

    @classmethod
    def from_file(cls, path: Path) -> Mapper:
        return cls(yaml.safe_load(path.read_text()))

    def map(self, statsd_name: str) -> Mapped | None:
        """The Prometheus series a StatsD name becomes; None when it is dropped."""
        for rule in self.rules:
            found = rule.pattern.match(statsd_name)
            if found:
                if rule.drop:
                    return None
                groups = found.groups()
                labels = {k: _expand(str(v), groups) for k, v in rule.labels.items()}
                return Mapped(_expand(rule.name, groups), tuple(sorted(labels.items())))
        return Mapped(default_name(statsd_name), ())
