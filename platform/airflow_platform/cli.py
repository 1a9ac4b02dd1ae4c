"""`airflow-platform`: one sub-command per capability.

Each capability lives in its own package and contributes its commands through a
`register(app)` function in `<package>/cli.py`.
"""

from __future__ import annotations

import importlib
import sys

import typer

from airflow_platform import __version__

CAPABILITIES = ("dagsync", "bootstrap", "environment", "scaling", "local")

# The top-level command each capability adds. Containers start through `bootstrap` and
# `dagsync` on every pod start, so those load only their own capability.
COMMAND_OWNERS = {
    "dagsync": "dagsync",
    "bootstrap": "bootstrap",
    "requirements": "bootstrap",
    "env": "environment",
    "scaling": "scaling",
    "local": "local",
}

app = typer.Typer(
    name="airflow-platform",
    help="A self-hosted Amazon MWAA: Apache Airflow 3 on Kubernetes.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """A self-hosted Amazon MWAA: Apache Airflow 3 on Kubernetes."""


@app.command()
def version() -> None:
    """Print the platform version."""
    typer.echo(__version__)


def _register_capabilities(argv: list[str]) -> None:
    owner = COMMAND_OWNERS.get(argv[1]) if len(argv) > 1 else None
    for name in (owner,) if owner else CAPABILITIES:
        module_name = f"airflow_platform.{name}.cli"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # Only a capability that is not installed at all is skipped; a broken import
            # inside one must surface.
            if exc.name not in (module_name, f"airflow_platform.{name}"):
                raise
            continue
        module.register(app)


_register_capabilities(sys.argv)


def main() -> None:
    app()
