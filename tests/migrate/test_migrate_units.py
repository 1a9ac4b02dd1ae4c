"""The parts of `migrate check` that need no Airflow process: fast, one behaviour each."""

from __future__ import annotations

import json
from pathlib import Path

from airflow_platform.environment.mwaa_import import import_environment
from airflow_platform.migrate.startup import assignments
from airflow_platform.migrate.static_rules import Facts, python_findings
from airflow_platform.migrate.templates import removed_variables

REPO = Path(__file__).resolve().parents[2]
REMOVED = frozenset({"execution_date", "prev_ds", "conf"})
FACTS = Facts(removed_context_keys=REMOVED, orm_models=frozenset({"DagRun", "Variable"}))


def test_templates_read_removed_names_but_not_names_they_set() -> None:
    text = (
        "{{ ds | ds_nodash }} {{ prev_ds }}\n"
        "{% set conf = 1 %}{{ conf }}{% for execution_date in dates %}{{ execution_date }}"
        "{% endfor %}\n{{ dag_run.conf }}"
    )
    assert [(u.name, u.line) for u in removed_variables(text, REMOVED)] == [("prev_ds", 1)]


def test_context_reads_only_count_on_context_holders() -> None:
    code = (
        "def task_fn(**kwargs):\n"
        "    settings = {'execution_date': 1}\n"
        "    return settings['execution_date'], kwargs['execution_date']\n"
    )
    found = [(f.rule, f.line) for f in python_findings("dags/x.py", code, FACTS)]
    assert found == [("MIG010", 3)]


def test_variable_is_not_database_access_but_dagrun_is() -> None:
    code = (
        "from airflow.models import DagRun, Variable\nVariable.get('x')\nDagRun.find(dag_id='x')\n"
    )
    assert [(f.rule, f.line) for f in python_findings("dags/x.py", code, FACTS)] == [("MIG020", 3)]


def test_catchup_only_for_time_based_schedules() -> None:
    code = (
        "DAG('a', schedule='@daily')\n"
        "DAG('b', schedule=None)\n"
        "DAG('c', schedule=[Asset('s3://x')])\n"
        "DAG('d', schedule='@daily', catchup=False)\n"
    )
    assert [(f.rule, f.line) for f in python_findings("dags/x.py", code, FACTS)] == [("MIG033", 1)]
    kept = Facts(REMOVED, frozenset(), catchup_by_default=True)
    assert python_findings("dags/x.py", code, kept) == []


def test_startup_assignments() -> None:
    script = "export A=1 B=2\nC=3\nexport D\nunset E\n# export F=1\necho G=1\n"
    assert assignments(script) == [("A", 1), ("B", 1), ("C", 2), ("D", 3), ("E", 4)]


def test_env_import_points_at_migrate_check() -> None:
    path = REPO / "examples/environments/mwaa/etl-small.get-environment.json"
    result = import_environment(json.loads(path.read_text()))
    version = next(p for p in result.report.changed if p.field == "AirflowVersion")
    assert "airflow-platform migrate check s3://acme-etl-airflow/airflow/dags" in version.message
