"""The Airflow CLI commands `ops airflow` runs: MWAA's list of supported CLI commands
(its "Apache Airflow CLI command reference"), kept to those Airflow 3 still has. Commands
that start services, change the database schema, manage users or print secrets in bulk
(`db migrate`, `scheduler`, `users`, `config list`, `tasks run`, ...) are not on it."""

from __future__ import annotations

from collections.abc import Sequence

from airflow_platform.ops.errors import OpsError

# group -> sub-commands; an empty tuple means the group is a command by itself.
ALLOWED: dict[str, tuple[str, ...]] = {
    "cheat-sheet": (),
    "version": (),
    "plugins": (),
    "config": ("get-value",),
    "connections": ("add", "delete", "export", "get", "import", "list"),
    "dags": (
        "delete",
        "list",
        "list-import-errors",
        "list-jobs",
        "list-runs",
        "next-execution",
        "pause",
        "unpause",
        "report",
        "reserialize",
        "show",
        "state",
        "test",
        "trigger",
        "details",
    ),
    "backfill": ("create",),  # Airflow 3's successor of `dags backfill`
    "jobs": ("check",),
    "db": ("check",),
    "pools": ("delete", "export", "get", "import", "list", "set"),
    "providers": ("behaviours", "get", "hooks", "links", "list", "widgets"),
    "roles": ("create", "list"),
    "tasks": ("clear", "failed-deps", "list", "render", "state", "states-for-dag-run", "test"),
    "variables": ("delete", "export", "get", "import", "list", "set"),
}


def allowed_commands() -> list[str]:
    return [f"{g} {s}" if s else g for g, subs in ALLOWED.items() for s in (subs or ("",))]


def check_command(argv: Sequence[str]) -> list[str]:
    """The Airflow CLI argv (without `airflow`) when allowed; OpsError naming the command
    and the allowed list otherwise."""
    args = list(argv)
    if args[:1] == ["airflow"]:
        args = args[1:]
    if not args:
        raise OpsError(
            "no Airflow command given: e.g. `airflow-platform ops airflow -- dags list`. "
            f"Allowed: {', '.join(allowed_commands())}"
        )
    group = args[0]
    if group.startswith("-"):
        raise OpsError(f"options go after the command: {' '.join(args)}")
    if group not in ALLOWED:
        raise OpsError(
            f"`airflow {group}` is not an allowed command. Allowed: {', '.join(allowed_commands())}"
        )
    subs = ALLOWED[group]
    if subs:
        sub = args[1] if len(args) > 1 else ""
        if sub not in subs:
            name = f"airflow {group} {sub}".strip()
            raise OpsError(
                f"`{name}` is not an allowed command. Allowed `{group}` commands: "
                f"{', '.join(f'{group} {s}' for s in subs)}"
            )
    return args
