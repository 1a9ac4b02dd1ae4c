"""Jinja templates (in Python strings and in .sql/.sh files) that read context variables
Airflow 3 no longer provides, found through jinja2's own parser, not by pattern matching."""

from __future__ import annotations

from dataclasses import dataclass

import jinja2
from jinja2 import nodes

TEMPLATE_SUFFIXES = (".sql", ".sh", ".bash", ".hql", ".j2", ".jinja", ".jinja2")

# What to write instead of each context variable Airflow 3 removed.
REPLACEMENTS: dict[str, str] = {
    "execution_date": "logical_date (or data_interval_start for the period a run covers)",
    "next_execution_date": "data_interval_end",
    "prev_execution_date": "prev_data_interval_start_success",
    "prev_execution_date_success": "prev_data_interval_start_success",
    "next_ds": "{{ data_interval_end | ds }}",
    "next_ds_nodash": "{{ data_interval_end | ds_nodash }}",
    "prev_ds": "{{ prev_data_interval_start_success | ds }}",
    "prev_ds_nodash": "{{ prev_data_interval_start_success | ds_nodash }}",
    "tomorrow_ds": "{{ macros.ds_add(ds, 1) }}",
    "tomorrow_ds_nodash": "{{ macros.ds_format(macros.ds_add(ds, 1), '%Y-%m-%d', '%Y%m%d') }}",
    "yesterday_ds": "{{ macros.ds_add(ds, -1) }}",
    "yesterday_ds_nodash": "{{ macros.ds_format(macros.ds_add(ds, -1), '%Y-%m-%d', '%Y%m%d') }}",
    "triggering_dataset_events": "triggering_asset_events",
    "conf": "Airflow 3 no longer puts its configuration in the context: read it in task code "
    "with `from airflow.sdk import conf`, or keep the value in a Variable ({{ var.value.NAME }})",
}


def replacement(key: str) -> str:
    hint = REPLACEMENTS.get(key)
    if hint is None:
        return f"`{key}` is not in Airflow 3's task context: use the Airflow 3 equivalent"
    if key == "conf":
        return hint
    return f"use {hint}"


@dataclass(frozen=True)
class TemplateUse:
    name: str
    line: int  # 1-based, within the template


class TemplateSyntaxProblem(ValueError):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


_ENV = jinja2.Environment(extensions=["jinja2.ext.do", "jinja2.ext.loopcontrols"])


def looks_templated(text: str) -> bool:
    return "{{" in text or "{%" in text


def removed_variables(text: str, removed: frozenset[str]) -> list[TemplateUse]:
    """Context variables in `removed` that the template reads (not ones it sets itself)."""
    try:
        tree = _ENV.parse(text)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateSyntaxProblem(exc.message or str(exc), exc.lineno or 1) from None
    # Names the template sets itself ({% set %}, loop variables, macro arguments) are not
    # context reads. (jinja2.meta would compile the template, which fails on Airflow's own
    # filters such as `| ds`; the parse tree alone is enough.)
    names = list(tree.find_all(nodes.Name))
    own = {node.name for node in names if node.ctx in ("store", "param")}
    uses = {
        (node.name, node.lineno)
        for node in names
        if node.ctx == "load" and node.name in removed and node.name not in own
    }
    return [TemplateUse(name, line) for name, line in sorted(uses, key=lambda u: (u[1], u[0]))]
