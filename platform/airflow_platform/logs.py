"""Logs of the platform's own processes (dagsync, bootstrap, worker agent) on stdout.

`AIRFLOW_PLATFORM_LOG_FORMAT=json` (the chart's default) writes one JSON object per line
with the fields an operator filters on in CloudWatch Logs Insights or Loki: ts, level,
component, environment, logger, event, msg, plus whatever the call passed in `extra`
(key, version, trigger, ...). `text` writes one readable line for a terminal.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any, TextIO

FORMAT_ENV = "AIRFLOW_PLATFORM_LOG_FORMAT"
ENVIRONMENT_ENV = "AIRFLOW_PLATFORM_ENVIRONMENT"
FORMATS = ("json", "text")

# LogRecord attributes that are not "extra" fields.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    def __init__(self, component: str = "", environment: str = "") -> None:
        super().__init__()
        self.component = component
        self.environment = environment

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "component": self.component,
            "environment": self.environment,
            "logger": record.name,
            "event": "message",
            "msg": record.getMessage(),
        }
        if not self.component:
            del payload["component"]
        if not self.environment:
            del payload["environment"]
        payload.update(_extras(record))
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self, component: str = "") -> None:
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={v}" for k, v in _extras(record).items() if k != "event")
        line = f"[{self.component or record.name}] {record.getMessage()}"
        line = f"{line} ({extras})" if extras else line
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def log_format(env: dict[str, str] | None = None, default: str = "json") -> str:
    """The configured format; an unknown value is refused naming the variable."""
    value = (env if env is not None else os.environ).get(FORMAT_ENV, "").strip() or default
    if value not in FORMATS:
        raise ValueError(f"{FORMAT_ENV}={value!r}: use one of {', '.join(FORMATS)}")
    return value


def setup_logging(
    component: str,
    logger_name: str,
    *,
    stream: TextIO | None = None,
    env: dict[str, str] | None = None,
    level: int = logging.INFO,
    default: str = "json",
) -> logging.Logger:
    """Send `logger_name` (and its children) to `stream` (stdout) in the configured format;
    `default` applies when the variable is unset (the chart always sets it)."""
    environ = env if env is not None else dict(os.environ)
    handler = logging.StreamHandler(stream or sys.stdout)
    if log_format(environ, default) == "json":
        handler.setFormatter(JsonFormatter(component, environ.get(ENVIRONMENT_ENV, "")))
    else:
        handler.setFormatter(TextFormatter(component))
    logger = logging.getLogger(logger_name)
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
    return logger
