"""Option groups shared by CLI commands: one decorator adds a group's options to a command
and hands the command one object built from them, so no command repeats the block.

- `where_options`: which environment (kubeconfig, context, namespace, release, or --local
  and its state directory) -> `where: Where`;
- `retention_options`: the retention plan's options -> `plan: RetentionPlan` (used by
  `ops retention`; `local retention` takes the same options).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from airflow_platform.ops.kube import Kube
    from airflow_platform.ops.retention import RetentionPlan


def fail(exc: Exception) -> typer.Exit:
    """Print the error (its message names the fix) and return the exit to raise: code 2."""
    from rich.console import Console

    Console(stderr=True, highlight=False).print(
        f"[bold red]error:[/bold red] {exc}", soft_wrap=True
    )
    return typer.Exit(2)


def option_group(
    name: str, build: Callable[..., Any], options: dict[str, tuple[Any, Any]]
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator adding `options` (parameter -> (Annotated type, default)) to a command
    ahead of its own, and calling it with `name=build(**those options)` instead."""
    group = [
        inspect.Parameter(key, inspect.Parameter.KEYWORD_ONLY, annotation=kind, default=default)
        for key, (kind, default) in options.items()
    ]

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        # The group's own annotation may name a type imported for type checking only.
        raw = inspect.signature(func).parameters.get(name)
        hidden = raw.annotation if raw is not None and isinstance(raw.annotation, str) else ""
        signature = inspect.signature(
            func, eval_str=True, locals={hidden: Any} if hidden.isidentifier() else None
        )
        own = [
            p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
            for p in signature.parameters.values()
            if p.name != name
        ]

        @functools.wraps(func)
        def command(**kwargs: Any) -> Any:
            built = build(**{key: kwargs.pop(key) for key in options})
            return func(**{name: built}, **kwargs)

        del command.__wrapped__  # typer must read the signature below, not func's
        params = [*group, *own]
        command.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command

    return decorate


@dataclass(frozen=True)
class Where:
    """The environment a command acts on: a release on a cluster, or the local platform."""

    kubeconfig: Path | None
    context: str | None
    namespace: str
    release: str
    local: bool
    state_dir: Path

    def kube(self) -> Kube:
        from airflow_platform.ops.kube import Target, connect

        return connect(Target(self.kubeconfig, self.context, self.namespace, self.release))


KubeconfigOpt = Annotated[
    Path | None, typer.Option("--kubeconfig", envvar="KUBECONFIG", help="kubeconfig file.")
]
ContextOpt = Annotated[str | None, typer.Option("--context", help="kubeconfig context.")]
NamespaceOpt = Annotated[str, typer.Option("--namespace", "-n", help="Namespace of the release.")]
ReleaseOpt = Annotated[str, typer.Option("--release", help="Helm release name.")]
LocalOpt = Annotated[bool, typer.Option("--local", help="The local platform instead of a cluster.")]
StateOpt = Annotated[
    Path,
    typer.Option(
        "--state-dir", envvar="AIRFLOW_PLATFORM_LOCAL_STATE", help="Local platform state."
    ),
]

where_options = option_group(
    "where",
    Where,
    {
        "kubeconfig": (KubeconfigOpt, None),
        "context": (ContextOpt, None),
        "namespace": (NamespaceOpt, "airflow"),
        "release": (ReleaseOpt, "airflow"),
        "local": (LocalOpt, False),
        "state_dir": (StateOpt, Path(".local-state")),
    },
)


def retention_plan(
    retention_days: int,
    tables: str,
    skip_archive: bool,
    drop_archives: bool,
    dry_run: bool,
    lock_timeout: int,
    statement_timeout: int,
) -> RetentionPlan:
    from airflow_platform.ops.retention import RetentionPlan

    return RetentionPlan(
        retention_days=retention_days,
        tables=tuple(t.strip() for t in tables.split(",") if t.strip()),
        skip_archive=skip_archive,
        drop_archives=drop_archives,
        dry_run=dry_run,
        lock_timeout_seconds=lock_timeout,
        statement_timeout_seconds=statement_timeout,
    )


RetentionDaysOpt = Annotated[
    int, typer.Option("--retention-days", min=30, max=730, help="Keep this many days of history.")
]
TablesOpt = Annotated[
    str, typer.Option("--tables", help='Comma-separated tables to clean; "" = all.')
]
SkipArchiveOpt = Annotated[
    bool,
    typer.Option(
        "--skip-archive/--keep-archive", help="Delete without archive tables (or keep them)."
    ),
]
DropArchivesOpt = Annotated[
    bool, typer.Option("--drop-archives", help="Then drop the archive tables of earlier runs.")
]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Count what would go; delete nothing.")]
LockTimeoutOpt = Annotated[
    int, typer.Option("--lock-timeout", min=1, help="Seconds a statement waits for a lock.")
]
StatementTimeoutOpt = Annotated[
    int, typer.Option("--statement-timeout", min=1, help="Longest statement, in seconds.")
]

retention_options = option_group(
    "plan",
    retention_plan,
    {
        "retention_days": (RetentionDaysOpt, 60),
        "tables": (TablesOpt, ""),
        "skip_archive": (SkipArchiveOpt, True),
        "drop_archives": (DropArchivesOpt, False),
        "dry_run": (DryRunOpt, False),
        "lock_timeout": (LockTimeoutOpt, 10),
        "statement_timeout": (StatementTimeoutOpt, 600),
    },
)
