"""`airflow-platform migrate check`: is an MWAA 2.x environment ready for Airflow 3?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

migrate_app = typer.Typer(
    help="Move an MWAA 2.x environment to Airflow 3: readiness checks and safe rewrites.",
    no_args_is_help=True,
)


@migrate_app.command("check")
def check(
    source: Annotated[
        str | None,
        typer.Argument(
            help="The DAGs: s3://BUCKET/PREFIX (read only) or a local folder. Default: "
            "SourceBucketArn and DagS3Path of --environment."
        ),
    ] = None,
    environment: Annotated[
        Path | None,
        typer.Option(help="`aws mwaa get-environment` JSON: its options, versions and S3 paths."),
    ] = None,
    plugins: Annotated[
        str | None,
        typer.Option(
            help="plugins.zip key (or path); default: next to the DAGs folder. 'none' skips it."
        ),
    ] = None,
    requirements: Annotated[
        str | None,
        typer.Option(help="requirements.txt key (or path); default: next to the DAGs folder."),
    ] = None,
    startup: Annotated[
        str | None,
        typer.Option(help="startup.sh key (or path); default: next to the DAGs folder."),
    ] = None,
    constraints: Annotated[
        Path | None,
        typer.Option(
            "--constraints",
            help="Platform constraints (default: $AIRFLOW_PLATFORM_CONSTRAINTS, else the "
            "installed versions).",
        ),
    ] = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the report as JSON here.")
    ] = None,
    markdown_path: Annotated[
        Path | None, typer.Option("--markdown", help="Write the report as Markdown here.")
    ] = None,
    fix: Annotated[
        Path | None,
        typer.Option(
            "--fix",
            help="Write a copy of the DAGs with the safe automatic rewrites to this new "
            "folder; the source is never touched.",
        ),
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option(help="Requirements cache (resolutions and installed trees)."),
    ] = None,
    import_timeout: Annotated[
        float, typer.Option(help="dagbag_import_timeout for each file, seconds.")
    ] = 30.0,
    file_timeout: Annotated[
        float, typer.Option(help="dag_file_processor_timeout for each file, seconds.")
    ] = 50.0,
    parallel: Annotated[
        int, typer.Option(help="Files imported at once (default: the CPU count).")
    ] = 0,
    details: Annotated[
        bool, typer.Option(help="Print every finding, not only the summary.")
    ] = True,
) -> None:
    """Check DAGs, plugins.zip, requirements.txt, startup.sh and the configuration of an
    MWAA 2.x environment against Airflow 3.3.2. Exit code 1 when a blocker is found."""
    import os

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from airflow_platform.bootstrap.settings import CONSTRAINTS_ENV
    from airflow_platform.migrate.check import DEFAULT_CACHE, CheckError, CheckOptions, run_check
    from airflow_platform.migrate.fix import FixError
    from airflow_platform.migrate.imports import ProbeFailed
    from airflow_platform.migrate.report import print_summary, to_json, to_markdown
    from airflow_platform.migrate.ruff_rules import RuffMissing
    from airflow_platform.migrate.source import SourceError

    err = Console(stderr=True, highlight=False)
    if source is None and environment is None:
        err.print("[red]error:[/red] give the DAGs (s3://BUCKET/dags or a folder) or --environment")
        raise typer.Exit(2)
    if constraints is None and os.environ.get(CONSTRAINTS_ENV):
        constraints = Path(os.environ[CONSTRAINTS_ENV])
    if fix is not None and fix.exists() and any(fix.iterdir()):
        err.print(f"[red]error:[/red] --fix {fix} is not empty; give a new or empty folder")
        raise typer.Exit(2)
    options = CheckOptions(
        source=source,
        environment=environment,
        plugins=plugins,
        requirements=requirements,
        startup=startup,
        constraints=constraints,
        cache_dir=cache_dir or DEFAULT_CACHE,
        import_timeout=import_timeout,
        file_timeout=file_timeout,
        parallel=parallel,
        fix_dir=fix,
    )
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("checking", total=None)

        def progress(what: str, total: int | None) -> None:
            if total is not None:
                bar.update(task, description="importing DAG files", total=total, completed=0)
            elif what.startswith("file:"):
                bar.advance(task)
            else:
                bar.update(task, description=what)

        try:
            report = run_check(options, progress)
        except (SourceError, CheckError, FixError, ProbeFailed, RuffMissing) as exc:
            bar.stop()
            err.print("[red]error:[/red] ", end="")
            err.print(str(exc), markup=False, soft_wrap=True)
            raise typer.Exit(2) from None
    out = Console(highlight=False)
    print_summary(report, out, details)
    for path, text in ((json_path, to_json), (markdown_path, to_markdown)):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text(report))
            err.print(f"wrote {path}")
    if report.count("blocker"):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(migrate_app, name="migrate")
