"""The routing part of manifests/logging/fluent-bit.yaml, evaluated in Python.

No Fluent Bit binary installs here (not in Debian bookworm, not on PyPI), so the test reads
the real configuration file and evaluates only what decides where a record goes: the
`grep` filter's `regex` rule and the `cloudwatch_logs` output's `log_group_template` /
`log_stream_template`, written in Fluent Bit's record accessor syntax
(`$key['sub']['subsub']`). A template resolves when every accessor in it resolves to a
string; otherwise the output falls back to `log_group_name` (documented behaviour).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

_ACCESSOR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)((?:\['[^']*'\])*)")


def access(record: dict[str, Any], accessor: str) -> Any:
    match = _ACCESSOR.fullmatch(accessor)
    if not match:
        raise ValueError(f"not a record accessor: {accessor!r}")
    value: Any = record.get(match.group(1))
    for key in re.findall(r"\['([^']*)'\]", match.group(2)):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def render_template(record: dict[str, Any], template: str) -> str | None:
    missing = False

    def one(m: re.Match[str]) -> str:
        nonlocal missing
        value = access(record, m.group(0))
        if not isinstance(value, str):
            missing = True
            return ""
        return value

    out = _ACCESSOR.sub(one, template)
    return None if missing else out


@dataclass(frozen=True)
class Route:
    group: str
    stream: str


class Routing:
    def __init__(self, config: dict[str, Any]) -> None:
        pipeline = config["pipeline"]
        self.greps = [f for f in pipeline["filters"] if f["name"] == "grep"]
        (self.output,) = [o for o in pipeline["outputs"] if o["name"] == "cloudwatch_logs"]
        self.kubernetes = next(f for f in pipeline["filters"] if f["name"] == "kubernetes")

    @classmethod
    def from_file(cls, path: Path) -> Routing:
        return cls(yaml.safe_load(path.read_text()))

    def _kept(self, record: dict[str, Any]) -> bool:
        for grep in self.greps:
            accessor, pattern = grep["regex"].split(" ", 1)
            value = access(record, accessor)
            if not isinstance(value, str) or not re.search(pattern, value):
                return False
        return True

    def route(self, record: dict[str, Any]) -> Route | None:
        """Where the output writes the record; None when a filter drops it."""
        if not self._kept(record):
            return None
        out = self.output
        group = render_template(record, out["log_group_template"]) or out["log_group_name"]
        stream = render_template(record, out["log_stream_template"])
        return Route(group, stream or f"{out['log_stream_prefix']}{record.get('tag', '')}")
