"""`ops airflow` runs MWAA's supported Airflow CLI commands and refuses the rest by name."""

from __future__ import annotations

import pytest

from airflow_platform.ops.allowlist import ALLOWED, allowed_commands, check_command
from airflow_platform.ops.errors import OpsError


@pytest.mark.parametrize(
    "argv",
    [
        ["dags", "list"],
        ["dags", "trigger", "my_dag", "--conf", '{"a": 1}'],
        ["tasks", "state", "my_dag", "t1", "run_1"],
        ["variables", "get", "key"],
        ["connections", "list", "-o", "json"],
        ["version"],
        ["cheat-sheet"],
        ["config", "get-value", "core", "parallelism"],
        ["airflow", "pools", "list"],  # a leading `airflow` is accepted and dropped
    ],
)
def test_allowed_commands_pass_with_their_arguments_untouched(argv: list[str]) -> None:
    expected = argv[1:] if argv[0] == "airflow" else argv
    assert check_command(argv) == expected


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["users", "create", "--role", "Admin"], "`airflow users`"),
        (["db", "migrate"], "`airflow db migrate`"),
        (["db", "reset", "-y"], "`airflow db reset`"),
        (["config", "list"], "`airflow config list`"),
        (["scheduler"], "`airflow scheduler`"),
        (["tasks", "run", "d", "t", "r"], "`airflow tasks run`"),
        (["dags"], "`airflow dags`"),
    ],
)
def test_anything_else_is_refused_by_name_with_the_allowed_list(
    argv: list[str], named: str
) -> None:
    with pytest.raises(OpsError) as caught:
        check_command(argv)
    message = str(caught.value)
    assert named in message
    assert "Allowed" in message
    group = argv[0]
    if group in ALLOWED:
        assert f"{group} {ALLOWED[group][0]}" in message
    else:
        assert "dags list" in message


def test_no_command_and_leading_options_are_explained() -> None:
    with pytest.raises(OpsError, match="no Airflow command given"):
        check_command([])
    with pytest.raises(OpsError, match="options go after the command"):
        check_command(["--help"])


def test_the_list_never_holds_commands_that_change_the_platform() -> None:
    listed = set(allowed_commands())
    forbidden = {"db migrate", "db reset", "db downgrade", "users create", "scheduler",
                 "api-server", "celery worker", "rotate-fernet-key", "config list"}  # fmt: skip
    assert not forbidden & listed
