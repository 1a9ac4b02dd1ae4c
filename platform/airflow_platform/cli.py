"""`airflow-platform`: one sub-command per capability.

Each capability lives in its own package and contributes its commands through a
`register(app)` function in `<package>/cli.py`.

Every container starts through `airflow-platform bootstrap --component X -- <command>`,
so that exact form is run before typer (and the pydantic it loads) is imported: it costs
a warm start ~0.1 s otherwise. Anything else, including help and every malformed
bootstrap call, goes through typer and gets typer's parsing and messages. The typer app
is built on first use: `from airflow_platform.cli import app` still returns it with every
capability registered.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from airflow_platform import __version__

TYPE_CHECKING = False  # typing itself costs a container start milliseconds
if TYPE_CHECKING:
    import typer

app: typer.Typer  # built on first use, see __getattr__

CAPABILITIES = (
    "dagsync",
    "bootstrap",
    "environment",
    "scaling",
    "local",
    "ops",
    "migrate",
    "auth",
    "image",
)

# The top-level command each capability adds. Containers start through `bootstrap` and
# `dagsync` on every pod start, so those load only their own capability.
COMMAND_OWNERS = {
    "dagsync": "dagsync",
    "bootstrap": "bootstrap",
    "requirements": "bootstrap",
    "env": "environment",
    "scaling": "scaling",
    "local": "local",
    "ops": "ops",
    "migrate": "migrate",
    "auth": "auth",
    "image": "image",
}

HELP = "A self-hosted Amazon MWAA: Apache Airflow 3 on Kubernetes."


def _root() -> None:
    """A self-hosted Amazon MWAA: Apache Airflow 3 on Kubernetes."""


def version() -> None:
    """Print the platform version."""
    import typer

    typer.echo(__version__)


def _register_capabilities(app: typer.Typer, argv: Sequence[str]) -> None:
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


def build_app(argv: Sequence[str]) -> typer.Typer:
    """The typer app with the capabilities `argv` needs (all of them unless it names one)."""
    import typer

    app = typer.Typer(
        name="airflow-platform", help=HELP, no_args_is_help=True, add_completion=False
    )
    app.callback()(_root)
    app.command()(version)
    _register_capabilities(app, argv)
    return app


def _app() -> typer.Typer:
    app = globals().get("app")
    if app is None:
        app = globals()["app"] = build_app(sys.argv)
    return app


def __getattr__(name: str) -> object:
    if name == "app":
        return _app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def bootstrap_request(args: Sequence[str]) -> tuple[str, list[str]] | None:
    """(component, command) when `args` is exactly `bootstrap --component X -- cmd...`
    (or `--component=X`); None for anything typer should parse."""
    if len(args) < 4 or args[0] != "bootstrap":
        return None
    if args[1] == "--component" and len(args) >= 5:
        component, rest = args[2], args[3:]
    elif args[1].startswith("--component="):
        component, rest = args[1].partition("=")[2], args[2:]
    else:
        return None
    if not component or component.startswith("-") or rest[0] != "--" or len(rest) < 2:
        return None
    return component, list(rest[1:])


def main() -> None:
    request = bootstrap_request(sys.argv[1:])
    if request is not None:
        from airflow_platform.bootstrap.entrypoint import start

        sys.exit(start(*request))
    _app()()
