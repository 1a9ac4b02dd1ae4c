"""`airflow-platform auth ...`: what the API server pod runs before Airflow signs anyone in."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

auth_app = typer.Typer(help="Sign-in support for the API server.", no_args_is_help=True)


@auth_app.command("simple-passwords")
def simple_passwords(
    source: Annotated[Path, typer.Option(help="The passwords file from the Secret.")],
    target: Annotated[Path, typer.Option(help="Where Airflow reads (and may write) it.")],
    users: Annotated[
        str,
        typer.Option(
            envvar="AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS",
            help="[core] simple_auth_manager_users; every user must have a password.",
        ),
    ],
) -> None:
    """Copy the SimpleAuthManager passwords from a Secret, refusing a file missing a user."""
    from airflow_platform.auth.simple_passwords import PasswordsFileError, install

    try:
        names = install(source, target, users)
    except (OSError, PasswordsFileError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"passwords of {', '.join(names)} installed at {target}")


def register(app: typer.Typer) -> None:
    app.add_typer(auth_app, name="auth")
