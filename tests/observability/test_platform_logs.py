"""The platform's own processes log one JSON object per line with the fields an operator
filters on, or readable text when asked."""

from __future__ import annotations

import io
import json
import logging

import pytest

from airflow_platform.logs import FORMAT_ENV, log_format, setup_logging

ENV = {FORMAT_ENV: "json", "AIRFLOW_PLATFORM_ENVIRONMENT": "analytics"}


def test_json_lines_carry_component_environment_level_event_and_extras() -> None:
    out = io.StringIO()
    log = setup_logging("dagsync", "test.logs.json", stream=out, env=ENV)
    log.info("published %s", "v42", extra={"event": "published", "key": "dags/a.py", "version": 42})
    log.warning("slow")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["component"] == "dagsync" and first["environment"] == "analytics"
    assert first["level"] == "info" and first["event"] == "published"
    assert first["msg"] == "published v42"
    assert first["key"] == "dags/a.py" and first["version"] == 42
    assert second["level"] == "warning" and second["event"] == "message"


def test_exceptions_stay_inside_the_one_json_line() -> None:
    out = io.StringIO()
    log = setup_logging("worker-agent", "test.logs.exc", stream=out, env=ENV)
    try:
        raise RuntimeError("database gone")
    except RuntimeError:
        log.exception("step failed", extra={"event": "step_failed"})
    (line,) = out.getvalue().splitlines()
    assert "RuntimeError: database gone" in json.loads(line)["exception"]


def test_text_is_one_readable_line() -> None:
    out = io.StringIO()
    log = setup_logging("bootstrap", "test.logs.text", stream=out, env={FORMAT_ENV: "text"})
    log.info("exec airflow scheduler", extra={"event": "exec", "pid": 7})
    assert out.getvalue() == "[bootstrap] exec airflow scheduler (pid=7)\n"


def test_unset_means_the_callers_default_and_a_bad_value_names_the_variable() -> None:
    assert log_format({}, default="text") == "text"
    assert log_format({}) == "json"
    with pytest.raises(ValueError, match=FORMAT_ENV):
        log_format({FORMAT_ENV: "xml"})


def test_messages_below_the_level_are_not_written() -> None:
    out = io.StringIO()
    log = setup_logging("dagsync", "test.logs.level", stream=out, env=ENV, level=logging.WARNING)
    log.info("quiet")
    assert out.getvalue() == ""
