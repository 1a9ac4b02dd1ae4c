"""The `ops` commands' shared option groups: every command acting on an environment takes
the same target options, `ops retention` and `local retention` the same retention options,
and the group reaches the command as one object."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from airflow_platform.cli import app
from airflow_platform.ops.options import Where, where_options

TARGET = ("--kubeconfig", "--context", "--namespace", "--release", "--local", "--state-dir")
runner = CliRunner()


def help_of(*path: str) -> str:
    done = runner.invoke(app, [*path, "--help"], terminal_width=200)
    assert done.exit_code == 0, done.output
    return done.output


def test_every_environment_command_takes_the_target_options() -> None:
    for name in ("status", "airflow", "token", "hibernate", "resume"):
        text = help_of("ops", name)
        for option in TARGET:
            assert option in text, (name, option)


def test_ops_and_local_retention_take_the_same_options() -> None:
    retention = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    ops = {p.name: p.default for p in retention["ops"].commands["retention"].params}
    local = {p.name: p.default for p in retention["local"].commands["retention"].params}
    local.pop("state_dir")
    assert ops == local


def test_the_group_reaches_the_command_as_one_object(tmp_path: Path) -> None:
    seen: list[Where] = []
    probe = typer.Typer()

    @probe.command()
    @where_options
    def show(where: Where, verbose: bool = False) -> None:
        seen.append(where)

    done = runner.invoke(probe, ["-n", "prod", "--release", "etl", "--local",
                                 "--state-dir", str(tmp_path)])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert seen == [Where(None, None, "prod", "etl", True, tmp_path)]


def test_a_wrong_kubeconfig_is_refused_by_every_cluster_command(tmp_path: Path) -> None:
    missing = tmp_path / "none"
    for name in ("status", "hibernate", "resume"):
        done = runner.invoke(app, ["ops", name, "--kubeconfig", str(missing)])
        assert done.exit_code == 2, (name, done.output)
        assert "no such file" in done.output, name
