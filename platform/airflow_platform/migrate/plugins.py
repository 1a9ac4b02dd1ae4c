"""plugins.zip: unpacked with the platform's safe unzip, read with ast, and loaded by
Airflow's own plugins manager in the probe; each interface Airflow 3 no longer serves is
named with its replacement."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_platform.migrate.findings import Finding

FLASK_LISTS = ("flask_blueprints", "appbuilder_views", "appbuilder_menu_items")
FLASK_FIX = (
    "rewrite it for the Airflow 3 UI: a FastAPI app in `fastapi_apps` shown through "
    "`external_views`, or a React app in `react_apps`"
)
AIRFLOW1_LISTS = {
    "admin_views": "`external_views` (a page in the Airflow 3 UI) or a FastAPI app",
    "menu_links": "`external_views` entries with a `destination` (links in the Airflow 3 menu)",
}
TRACEBACK_LINE = re.compile(r'File "([^"]+)", line (\d+)')


@dataclass
class PluginClass:
    file: str
    name: str
    line: int
    attributes: dict[str, int] = field(default_factory=dict)  # attribute -> line
    empty: set[str] = field(default_factory=set)  # assigned an empty list


def _bases(node: ast.ClassDef) -> set[str]:
    out = set()
    for base in node.bases:
        if isinstance(base, ast.Name):
            out.add(base.id)
        elif isinstance(base, ast.Attribute):
            out.add(base.attr)
    return out


def plugin_classes(folder: Path) -> tuple[list[PluginClass], list[Finding]]:
    classes: list[PluginClass] = []
    problems: list[Finding] = []
    for path in sorted(folder.rglob("*.py")):
        rel = path.relative_to(folder).as_posix()
        try:
            tree = ast.parse(path.read_bytes(), filename=rel)
        except SyntaxError as exc:
            problems.append(
                Finding(
                    "MIG041",
                    "blocker",
                    f"plugins.zip:{rel}",
                    exc.lineno,
                    f"SyntaxError: {exc.msg}",
                    "fix the syntax; Airflow cannot load this plugin module",
                    "ast",
                )
            )
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and "AirflowPlugin" in _bases(node):
                found = PluginClass(rel, node.name, node.lineno)
                for stmt in node.body:
                    targets = []
                    if isinstance(stmt, ast.Assign):
                        targets = [t.id for t in stmt.targets if isinstance(t, ast.Name)]
                        value = stmt.value
                    elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                        targets, value = [stmt.target.id], stmt.value
                    for target in targets:
                        found.attributes[target] = stmt.lineno
                        if isinstance(value, (ast.List, ast.Tuple)) and not value.elts:
                            found.empty.add(target)
                classes.append(found)
    return classes, problems


def _loaded(probe: dict[str, Any] | None, pclass: PluginClass) -> dict[str, Any] | None:
    for plugin in (probe or {}).get("plugins", []):
        if plugin.get("path") == pclass.file:
            return dict(plugin)
    return None


def plugin_findings(
    folder: Path,
    probe: dict[str, Any] | None,
    known_attributes: set[str],
    fab_provider: bool,
) -> list[Finding]:
    classes, findings = plugin_classes(folder)
    for pclass in classes:
        where = f"plugins.zip:{pclass.file}"
        loaded = _loaded(probe, pclass)
        counts = (loaded or {}).get("counts", {})

        def used(attr: str, pclass: PluginClass = pclass, counts: dict[str, int] = counts) -> bool:
            if attr not in pclass.attributes:
                return False
            if counts:  # Airflow loaded it: trust what it holds
                return bool(counts.get(attr))
            return attr not in pclass.empty

        for attr in FLASK_LISTS:
            if not used(attr):
                continue
            if fab_provider:
                level, message = (
                    "warning",
                    f"{pclass.name}.{attr}: Airflow 3 serves Flask plugins only through the FAB "
                    "provider's legacy app under /pluginsv2, and deprecates them",
                )
            else:
                level, message = (
                    "blocker",
                    f"{pclass.name}.{attr}: Airflow 3 loads Flask plugins only with the FAB "
                    "provider, which this environment does not install: the API server "
                    "refuses to start",
                )
            findings.append(
                Finding(
                    "MIG040",
                    level,  # type: ignore[arg-type]
                    where,
                    pclass.attributes[attr],
                    message,
                    FLASK_FIX
                    + ("" if fab_provider else "; until then add apache-airflow-providers-fab"),
                    "airflow" if counts else "ast",
                )
            )
        for attr, instead in AIRFLOW1_LISTS.items():
            if used(attr):
                findings.append(
                    Finding(
                        "MIG040",
                        "blocker",
                        where,
                        pclass.attributes[attr],
                        f"{pclass.name}.{attr} is not loaded by Airflow 3",
                        f"use {instead}",
                        "ast",
                    )
                )
        for attr, line in sorted(pclass.attributes.items()):
            if attr.startswith("_") or attr in known_attributes:
                continue
            if attr in ("operators", "sensors", "hooks", "executors"):
                findings.append(
                    Finding(
                        "MIG040",
                        "blocker",
                        where,
                        line,
                        f"{pclass.name}.{attr}: plugins no longer register {attr} "
                        "(removed in Airflow 2, ignored by 3)",
                        f"import the {attr} from their module in the DAG files instead of "
                        f"airflow.{attr}.<plugin>",
                        "ast",
                    )
                )
    for source, error in ((probe or {}).get("errors") or {}).items():
        rel = source.replace("$PLUGINS_FOLDER/", "")
        line = None
        for name, number in TRACEBACK_LINE.findall(error):
            if name.endswith(rel):
                line = int(number)
        last = error.strip().splitlines()[-1] if error.strip() else "failed to load"
        findings.append(
            Finding(
                "MIG041",
                "blocker",
                f"plugins.zip:{Path(rel).name if rel.startswith('/') else rel}",
                line,
                f"Airflow's plugins manager cannot load it: {last}",
                "fix the plugin's imports for Airflow 3 (see the AIR rules for its modules)",
                "airflow",
            )
        )
    return findings
