"""`airflow-platform env render|import|validate`: MWAA environment specs <-> chart values."""

from __future__ import annotations

import json
import sys
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:  # the model (pydantic) loads only when an env command runs
    from rich.console import Console

    from airflow_platform.environment.model import Environment
    from airflow_platform.environment.problems import Problem, SpecError


@cache
def _err() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


env_app = typer.Typer(
    help="MWAA-shaped environment specs: validate them, render chart values, import from MWAA.",
    no_args_is_help=True,
)


def _fail(exc: SpecError) -> typer.Exit:
    _err().print("[red]error:[/red] ", end="")
    _err().print(str(exc), soft_wrap=True, markup=False)
    return typer.Exit(2)


def _load(path: Path) -> Environment:
    from airflow_platform.environment.model import load_environment_file
    from airflow_platform.environment.problems import SpecError

    if not path.is_file():
        _err().print(f"[red]error:[/red] {path}: no such file")
        raise typer.Exit(2)
    try:
        return load_environment_file(path)
    except SpecError as exc:
        raise _fail(exc) from None


def _summary(env: Environment) -> str:
    from airflow_platform.environment.classes import ENVIRONMENT_CLASSES

    cls = ENVIRONMENT_CLASSES[env.environment_class]
    return (
        f"{env.name}: {env.environment_class} (Airflow {env.airflow_version}), "
        f"{env.schedulers} scheduler(s), workers {env.min_workers}-{env.max_workers} x "
        f"{cls.tasks_per_worker} tasks, api-server {env.min_webservers}-{env.max_webservers}, "
        f"{env.webserver_access_mode}, DAGs s3://{env.bucket}/{env.dag_s3_path.rstrip('/')}/, "
        f"namespace {env.eks.namespace}, {len(env.airflow_configuration_options)} config option(s)"
    )


def _print_problems(title: str, problems: list[Problem], style: str) -> None:
    if problems:
        _err().print(f"[{style}]{title}:[/{style}]")
        for problem in problems:
            _err().print(f"  - {problem}", soft_wrap=True, markup=False)


@env_app.command("render")
def render(
    spec: Annotated[Path, typer.Argument(help="Environment spec (YAML, MWAA field names).")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    allow_incomplete: Annotated[
        bool,
        typer.Option(help="Render even when EKS settings a deployment needs are missing."),
    ] = False,
) -> None:
    """Render chart values (to stdout) from an environment spec; a summary goes to stderr."""
    from airflow_platform.environment.problems import SpecError
    from airflow_platform.environment.render import render_values_yaml

    env = _load(spec)
    missing = env.missing_for_deploy()
    if missing and not allow_incomplete:
        raise _fail(SpecError(missing, f"{spec} (not deployable yet)"))
    text = render_values_yaml(env)
    if output:
        output.write_text(text)
    else:
        sys.stdout.write(text)
    _err().print(f"rendered {_summary(env)}", soft_wrap=True, markup=False)
    _print_problems("still to fill in", missing, "yellow")
    target = str(output) if output else "values.yaml"
    _err().print(
        f"deploy: helm upgrade --install {env.release_name} charts/airflow-platform "
        f"-n {env.eks.namespace} --create-namespace -f {target}"
    )


@env_app.command("validate")
def validate(
    spec: Annotated[Path, typer.Argument(help="Environment spec (YAML).")],
) -> None:
    """Check a spec against MWAA's rules and say what a deployment still needs."""
    env = _load(spec)
    missing = env.missing_for_deploy()
    _err().print(f"valid: {_summary(env)}", soft_wrap=True, markup=False)
    _print_problems("still to fill in before deploying", missing, "yellow")
    if missing:
        raise typer.Exit(1)


@env_app.command("import")
def import_(
    source: Annotated[str, typer.Argument(help="get-environment JSON file, or - for stdin.")] = "-",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the spec here (else stdout).")
    ] = None,
    eks: Annotated[
        Path | None,
        typer.Option(help="YAML with the Eks section (namespace, Secrets, queue URL, roles)."),
    ] = None,
    namespace: Annotated[str | None, typer.Option(help="Kubernetes namespace.")] = None,
    region: Annotated[str | None, typer.Option(help="AWS region (default: from Arn).")] = None,
) -> None:
    """Turn `aws mwaa get-environment` output into an environment spec."""
    import yaml

    from airflow_platform.environment.model import dump_environment
    from airflow_platform.environment.mwaa_import import import_environment
    from airflow_platform.environment.problems import SpecError

    try:
        raw = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as exc:
        _err().print(f"[red]error:[/red] {source}: {exc.strerror}")
        raise typer.Exit(2) from None
    try:
        document = json.loads(raw)
    except json.JSONDecodeError as exc:
        _err().print(f"[red]error:[/red] {source}: not JSON ({exc}); pass get-environment output")
        raise typer.Exit(2) from None
    overlay = None
    if eks is not None:
        try:
            overlay = yaml.safe_load(eks.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            _err().print(f"[red]error:[/red] --eks {eks}: {exc}")
            raise typer.Exit(2) from None
        if not isinstance(overlay, dict):
            _err().print(f"[red]error:[/red] --eks {eks}: expected a mapping (the Eks section)")
            raise typer.Exit(2)
    try:
        result = import_environment(document, overlay, namespace=namespace, region=region)
    except SpecError as exc:
        raise _fail(exc) from None
    text = dump_environment(result.environment)
    if output:
        output.write_text(text)
        _err().print(f"wrote {output}")
    else:
        sys.stdout.write(text)
    report = result.report
    _err().print("[green]mapped:[/green] ", end="")
    _err().print(", ".join(report.mapped), soft_wrap=True, markup=False)
    _print_problems("changed", report.changed, "yellow")
    _print_problems("not mapped", report.not_mapped, "cyan")
    _print_problems("still to fill in (Eks section)", report.to_fill, "yellow")


def register(app: typer.Typer) -> None:
    app.add_typer(env_app, name="env")
