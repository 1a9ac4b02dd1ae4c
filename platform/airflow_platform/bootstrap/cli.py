"""`airflow-platform bootstrap` (the container entrypoint) and `requirements test|package`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from airflow_platform.bootstrap.settings import COMPONENTS, CONSTRAINTS_ENV

requirements_app = typer.Typer(
    help="Check a requirements.txt offline, or bundle its wheels for private networks.",
    no_args_is_help=True,
)


def _echo_err(message: str) -> None:
    typer.echo(message, err=True)


def bootstrap(
    component: Annotated[
        str, typer.Option(help=f"The component starting: {', '.join(COMPONENTS)}.")
    ],
    command: Annotated[
        list[str] | None, typer.Argument(help="The Airflow command, after --.")
    ] = None,
) -> None:
    """Run startup.sh, install requirements.txt, add plugins, then exec the command."""
    # The well-formed `bootstrap --component X -- cmd` never gets here: the root CLI runs
    # it without loading typer (see airflow_platform.cli). Both end in start().
    from airflow_platform.bootstrap.entrypoint import start

    raise typer.Exit(start(component, command or []))


def _constraints(constraints: Path | None) -> Path | None:
    if constraints is None and os.environ.get(CONSTRAINTS_ENV):
        return Path(os.environ[CONSTRAINTS_ENV])
    return constraints


ConstraintsOption = Annotated[
    Path | None,
    typer.Option(
        "--constraints",
        "-c",
        help=f"Constraints file (default: ${CONSTRAINTS_ENV}, else the installed versions).",
    ),
]


@requirements_app.command("test")
def test(
    requirements: Annotated[Path, typer.Argument(help="requirements.txt to check.")],
    constraints: ConstraintsOption = None,
) -> None:
    """Check requirements.txt against the constraints and essential packages, offline."""
    from airflow_platform.bootstrap.check import check_requirements
    from airflow_platform.bootstrap.constraints import (
        Constraints,
        essential_versions,
        installed_distributions,
    )
    from airflow_platform.bootstrap.requirements_file import read_requirements

    if not requirements.is_file():
        _echo_err(f"error: {requirements}: no such file")
        raise typer.Exit(2)
    installed = installed_distributions()
    path = _constraints(constraints)
    try:
        cons = Constraints.from_file(path) if path else Constraints.from_installed(installed)
    except FileNotFoundError as exc:
        _echo_err(f"error: {exc}")
        raise typer.Exit(2) from None
    parsed = read_requirements(requirements)
    report = check_requirements(parsed, cons, essential_versions(installed))
    for warning in report.warnings:
        typer.echo(f"{requirements}: warning: {warning}")
    for error in report.errors:
        typer.echo(f"{requirements}: error: {error}")
    typer.echo(
        f"{requirements}: {len(parsed.requirements)} requirement(s) checked against "
        f"{cons.source} ({len(cons.pins)} pins): {len(report.errors)} error(s), "
        f"{len(report.warnings)} warning(s)"
    )
    if not report.ok:
        raise typer.Exit(1)


@requirements_app.command("package")
def package(
    requirements: Annotated[Path, typer.Argument(help="requirements.txt to bundle.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The zip to write.")],
    constraints: ConstraintsOption = None,
) -> None:
    """Download the wheels requirements.txt needs (beyond the image) into a zip.

    Put the zip's wheels/ folder into plugins.zip: components then install offline.
    """
    from airflow_platform.bootstrap.bundle import build_bundle
    from airflow_platform.bootstrap.result import RequirementsError

    if not requirements.is_file():
        _echo_err(f"error: {requirements}: no such file")
        raise typer.Exit(2)
    try:
        result = build_bundle(requirements, output, _constraints(constraints), log=_echo_err)
    except (RequirementsError, FileNotFoundError) as exc:
        _echo_err(f"error: {exc}")
        raise typer.Exit(1) from None
    typer.echo(
        f"wrote {result.output}: {len(result.wheels)} wheel(s) "
        f"({len(result.skipped)} package(s) already in the image left out)"
    )


def register(app: typer.Typer) -> None:
    app.command(
        "bootstrap",
        context_settings={"allow_interspersed_args": False},
    )(bootstrap)
    app.add_typer(requirements_app, name="requirements")
