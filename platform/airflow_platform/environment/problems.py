"""Turning validation failures into messages that name the field and the fix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic_core import PydanticCustomError

RULES_ERROR = "environment_rules"


@dataclass(frozen=True)
class Problem:
    field: str  # dotted path in the spec, e.g. "LoggingConfiguration.TaskLogs.LogLevel"
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class SpecError(ValueError):
    """An environment spec that breaks one or more rules."""

    def __init__(self, problems: list[Problem], source: str = "environment spec") -> None:
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"{source} is invalid ({len(problems)} problem(s)):\n{lines}")


def rules_error(problems: list[Problem]) -> PydanticCustomError:
    """A pydantic error carrying several problems, each with its own field path."""
    summary = "; ".join(str(problem) for problem in problems)
    return PydanticCustomError(
        RULES_ERROR,
        "{summary}",
        {"summary": summary, "problems": [(p.field, p.message) for p in problems]},
    )


def _location(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1] if parts else ''}[{item}]"]
        else:
            parts.append(str(item))
    return ".".join(parts) or "(spec)"


_HINTS = {
    "missing": "add it",
    "extra_forbidden": "remove it or check its spelling (field names are MWAA's, e.g. MinWorkers)",
    "int_parsing": "use a whole number",
    "int_type": "use a whole number",
    "bool_parsing": "use true or false",
    "bool_type": "use true or false",
    "string_type": "use a string",
    "dict_type": "use a mapping",
    "model_type": "use a mapping",
}


def problems_from(error: ValidationError) -> list[Problem]:
    problems: list[Problem] = []
    for item in error.errors(include_url=False):
        ctx = item.get("ctx") or {}
        if item["type"] == RULES_ERROR and "problems" in ctx:
            problems.extend(Problem(field, message) for field, message in ctx["problems"])
            continue
        message = str(item["msg"]).removeprefix("Value error, ")
        hint = _HINTS.get(item["type"])
        if item["type"] == "literal_error" and "expected" in ctx:
            hint = f"use one of {ctx['expected']}"
        if hint:
            message = f"{message}; {hint}"
        if item["type"] not in ("missing", "extra_forbidden", "value_error") and "input" in item:
            shown = repr(item["input"])
            if len(shown) <= 80:
                message = f"{message} (got {shown})"
        problems.append(Problem(_location(tuple(item["loc"])), message))
    return problems
