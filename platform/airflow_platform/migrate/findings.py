"""What a check finds: one record per problem, with its rule, place, level and fix."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Level = Literal["blocker", "warning", "info"]
LEVELS: tuple[Level, ...] = ("blocker", "warning", "info")

# Rule ids of the checks this package runs itself; ruff's AIR rules keep their own codes.
RULES: dict[str, str] = {
    "MIG001": "the file fails to import in Airflow's DagBag",
    "MIG002": "the file's import ran past the DAG processor's time limit",
    "MIG003": "the file ended the interpreter while being imported",
    "MIG004": "Airflow warned while importing the file",
    "MIG010": "a task reads a context key Airflow 3 removed",
    "MIG011": "a template uses a context variable Airflow 3 removed",
    "MIG012": "a template cannot be parsed",
    "MIG020": "task code reaches the metadata database directly",
    "MIG030": "SubDAGs are removed in Airflow 3",
    "MIG031": "SLAs are removed in Airflow 3",
    "MIG032": "the DAG has no schedule: 2.x ran it daily, Airflow 3 never schedules it",
    "MIG033": "catchup default changed from True to False",
    "MIG040": "a plugin uses an interface Airflow 3 no longer loads",
    "MIG041": "a plugin fails to load",
    "MIG042": "plugins.zip is refused",
    "MIG050": "requirements.txt cannot be installed against the platform's constraints",
    "MIG051": "requirements.txt advice",
    "MIG052": "a provider must move to a release built for Airflow 3",
    "MIG060": "an Airflow configuration option changed in Airflow 3",
    "MIG061": "the platform refuses this configuration option",
    "MIG070": "startup.sh sets a variable the platform protects",
    "MIG071": "startup.sh sets an Airflow option that changed in Airflow 3",
    "MIG072": "startup.sh is not valid bash",
    "MIG090": "the Python file has a syntax error",
    "MIG091": "the static rules could not read the file",
}


@dataclass(frozen=True)
class Finding:
    rule: str
    level: Level
    file: str  # relative to the environment: dags/x.py, plugins.zip:p.py, requirements.txt
    line: int | None
    message: str
    fix: str
    tool: str  # what found it: airflow, ruff, ast, jinja, uv, config, bash

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FileStatus:
    """One checked file: how its import went and which DAGs it defines."""

    file: str
    kind: str  # dag, module, template, plugins, requirements, startup, environment
    imported: str = ""  # ok | error | timeout | exit | skipped | ""
    dags: list[str] = field(default_factory=list)
    seconds: float = 0.0
