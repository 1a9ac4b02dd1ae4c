"""Rules read from the Python syntax tree (ast) where ruff's AIR3 rules have no counterpart:
removed context keys (also inside Jinja strings), metadata database access from task code,
SubDAGs, SLAs in default_args, and the catchup default that changed."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass

from airflow_platform.migrate.findings import Finding
from airflow_platform.migrate.templates import (
    TemplateSyntaxProblem,
    looks_templated,
    removed_variables,
    replacement,
)

SESSION_HELPERS = {"create_session", "provide_session", "NEW_SESSION"}
SESSION_MODULES = {"airflow.utils.session", "airflow.utils.db", "airflow.settings"}
# ORM models the Task SDK still serves through the API server when used this way.
SDK_SERVED = {"Variable", "Connection"}
SUBDAG_MODULES = {"airflow.operators.subdag", "airflow.operators.subdag_operator"}
DB_FIX = (
    "Airflow 3 tasks have no metadata database connection: use the Task SDK "
    "(context['ti'], airflow.sdk Variable/Connection/XCom) or the Airflow REST API "
    "(airflow.providers.http or the airflow-client) instead of an ORM session"
)
SLA_FIX = (
    "SLAs were removed in Airflow 3 and this setting is ignored: use Deadline Alerts "
    "(DAG(deadline=DeadlineAlert(...)), `from airflow.sdk import DeadlineAlert`)"
)


@dataclass(frozen=True)
class Facts:
    """What the static rules need to know about the target Airflow."""

    removed_context_keys: frozenset[str]
    orm_models: frozenset[str]
    catchup_by_default: bool = False  # the environment's [scheduler] catchup_by_default on 3.x


def _call_name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _is_dag_call(node: ast.Call) -> bool:
    return _call_name(node.func) in ("DAG", "dag")


class _Visitor(ast.NodeVisitor):
    def __init__(self, rel: str, facts: Facts) -> None:
        self.rel = rel
        self.facts = facts
        self.findings: list[Finding] = []
        self.session_names: set[str] = set()
        self.models: set[str] = set()
        self.settings_names: set[str] = set()
        self.context_names: set[str] = {"context"}
        self.task_functions: set[str] = set()

    def add(self, rule: str, level: str, line: int, message: str, fix: str) -> None:
        self.findings.append(Finding(rule, level, self.rel, line, message, fix, "ast"))  # type: ignore[arg-type]

    # -- imports ---------------------------------------------------------------------------
    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        for alias in node.names:
            name = alias.asname or alias.name
            if module in SESSION_MODULES and alias.name in SESSION_HELPERS | {"Session"}:
                self.session_names.add(name)
                self.add(
                    "MIG020",
                    "blocker",
                    node.lineno,
                    f"imports {alias.name} from {module} to open metadata database sessions",
                    DB_FIX,
                )
            elif module == "airflow" and alias.name == "settings":
                self.settings_names.add(name)
            elif module == "airflow.models" and alias.name in self.facts.orm_models:
                if alias.name not in SDK_SERVED:
                    self.models.add(name)
            elif module in SUBDAG_MODULES or alias.name == "SubDagOperator":
                self.add(
                    "MIG030",
                    "blocker",
                    node.lineno,
                    f"imports {alias.name} from {module}: SubDAGs were removed in Airflow 3",
                    "rewrite the SubDAG as a TaskGroup (`from airflow.sdk import TaskGroup`)",
                )
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name == "airflow.settings":
                self.settings_names.add(alias.asname or "airflow.settings")
        self.generic_visit(node)

    # -- functions whose parameters receive the context ---------------------------------------
    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        args = node.args
        if args.kwarg is not None:
            self.context_names.add(args.kwarg.arg)
        decorated = any(
            _call_name(d.func if isinstance(d, ast.Call) else d).startswith("task")
            or (
                isinstance(d, ast.Attribute)
                and isinstance(d.value, ast.Name)
                and d.value.id == "task"
            )
            or (
                isinstance(d, ast.Call)
                and isinstance(d.func, ast.Attribute)
                and isinstance(d.func.value, ast.Name)
                and d.func.value.id == "task"
            )
            for d in node.decorator_list
        )
        if decorated or node.name in self.task_functions:
            for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs]:
                if arg.arg in self.facts.removed_context_keys:
                    self.add(
                        "MIG010",
                        "blocker",
                        arg.lineno,
                        f"task function {node.name}() takes `{arg.arg}` from the context; "
                        "Airflow 3 no longer provides it",
                        replacement(arg.arg),
                    )
        for deco in node.decorator_list:
            target = deco.func if isinstance(deco, ast.Call) else deco
            if _call_name(target) in self.session_names:
                self.add(
                    "MIG020",
                    "blocker",
                    deco.lineno,
                    f"{node.name}() is decorated with {_call_name(target)} (a metadata "
                    "database session)",
                    DB_FIX,
                )
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Assign(self, node: ast.Assign) -> None:
        if isinstance(node.value, ast.Call) and _call_name(node.value.func) == (
            "get_current_context"
        ):
            self.context_names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        self.generic_visit(node)

    # -- reads of removed context keys ---------------------------------------------------------
    def _context_key(self, holder: ast.expr, key: ast.expr, line: int) -> None:
        if not (isinstance(holder, ast.Name) and holder.id in self.context_names):
            return
        if isinstance(key, ast.Constant) and key.value in self.facts.removed_context_keys:
            self.add(
                "MIG010",
                "blocker",
                line,
                f"reads {holder.id}[{key.value!r}]: Airflow 3 no longer sets `{key.value}` "
                "in the task context",
                replacement(str(key.value)),
            )

    def visit_Subscript(self, node: ast.Subscript) -> None:
        self._context_key(node.value, node.slice, node.lineno)
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if (
            node.attr == "Session"
            and isinstance(node.value, ast.Name)
            and node.value.id in self.settings_names | {"settings"}
            and isinstance(node.ctx, ast.Load)
        ):
            self.add(
                "MIG020",
                "blocker",
                node.lineno,
                "uses settings.Session (a metadata database session)",
                DB_FIX,
            )
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "get" and node.args:
            self._context_key(func.value, node.args[0], node.lineno)
        name = _call_name(func)
        if name in self.session_names:
            self.add(
                "MIG020",
                "blocker",
                node.lineno,
                f"calls {name}() (a metadata database session)",
                DB_FIX,
            )
        if name in ("query", "select") and any(
            isinstance(a, ast.Name) and a.id in self.models for a in node.args
        ):
            models = ", ".join(a.id for a in node.args if isinstance(a, ast.Name))
            self.add(
                "MIG020",
                "blocker",
                node.lineno,
                f"queries the metadata database ORM model(s) {models}",
                DB_FIX,
            )
        elif (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id in self.models
        ):
            self.add(
                "MIG020",
                "blocker",
                node.lineno,
                f"calls {func.value.id}.{func.attr}(), which reads the metadata database",
                DB_FIX,
            )
        if name == "SubDagOperator" or any(k.arg == "subdag" for k in node.keywords):
            self.add(
                "MIG030",
                "blocker",
                node.lineno,
                "defines a SubDAG: SubDAGs were removed in Airflow 3",
                "rewrite the SubDAG as a TaskGroup (`from airflow.sdk import TaskGroup`)",
            )
        for kw in node.keywords:
            if kw.arg == "python_callable" and isinstance(kw.value, ast.Name):
                self.task_functions.add(kw.value.id)
        if _is_dag_call(node):
            self._catchup(node)
        self.generic_visit(node)

    def visit_Dict(self, node: ast.Dict) -> None:
        for key in node.keys:
            if isinstance(key, ast.Constant) and key.value in ("sla", "sla_miss_callback"):
                self.add(
                    "MIG031",
                    "warning",
                    key.lineno,
                    f"sets `{key.value}` (in a dict such as default_args)",
                    SLA_FIX,
                )
        self.generic_visit(node)

    # -- catchup ----------------------------------------------------------------------------
    def _catchup(self, node: ast.Call) -> None:
        names = {k.arg for k in node.keywords}
        if None in names or "catchup" in names or self.facts.catchup_by_default:
            return
        schedule = next(
            (k.value for k in node.keywords if k.arg in ("schedule", "schedule_interval")), None
        )
        if schedule is None:
            return  # no schedule at all: ruff's AIR002 reports it
        # Only time-based schedules catch up: not None/@once/@continuous, not assets.
        if isinstance(schedule, ast.Constant):
            if not isinstance(schedule.value, str) or schedule.value in ("@once", "@continuous"):
                return
        elif not isinstance(schedule, ast.Call) or _call_name(schedule.func) in (
            "Dataset",
            "Asset",
            "AssetAll",
            "AssetAny",
            "DatasetAll",
            "DatasetAny",
        ):
            return
        self.add(
            "MIG033",
            "warning",
            node.lineno,
            "this scheduled DAG does not set catchup: Airflow 2 created every missed run "
            "since start_date (catchup_by_default True), Airflow 3 does not (False)",
            "set catchup=True to keep the 2.x behaviour, or catchup=False to say you want "
            "the new one (or set scheduler.catchup_by_default in the configuration)",
        )

    # -- Jinja inside Python strings ------------------------------------------------------------
    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and looks_templated(node.value):
            for finding in template_findings(
                self.rel, node.value, self.facts.removed_context_keys, node.lineno, "ast+jinja"
            ):
                self.findings.append(finding)


def template_findings(
    rel: str, text: str, removed: frozenset[str], first_line: int = 1, tool: str = "jinja"
) -> Iterator[Finding]:
    try:
        uses = removed_variables(text, removed)
    except TemplateSyntaxProblem as exc:
        if tool == "jinja":  # a Python string with braces need not be a template
            yield Finding(
                "MIG012",
                "warning",
                rel,
                first_line + exc.line - 1,
                f"the template does not parse: {exc}",
                "fix the Jinja syntax (Airflow renders this file as a template)",
                tool,
            )
        return
    for use in uses:
        yield Finding(
            "MIG011",
            "blocker",
            rel,
            first_line + use.line - 1,
            f"the template reads `{use.name}`, which Airflow 3 no longer provides",
            replacement(use.name),
            tool,
        )


def python_findings(rel: str, text: str, facts: Facts) -> list[Finding]:
    try:
        tree = ast.parse(text, filename=rel)
    except SyntaxError as exc:
        return [
            Finding(
                "MIG090",
                "blocker",
                rel,
                exc.lineno,
                f"SyntaxError: {exc.msg}",
                "fix the syntax; Airflow cannot import the file",
                "ast",
            )
        ]
    visitor = _Visitor(rel, facts)
    # Two passes: python_callable=f may come after def f().
    collector = _Visitor(rel, facts)
    collector.visit(tree)
    visitor.task_functions = collector.task_functions
    visitor.visit(tree)
    unique: dict[tuple[str, int | None, str], Finding] = {}
    for finding in visitor.findings:
        unique.setdefault((finding.rule, finding.line, finding.message), finding)
    return list(unique.values())
