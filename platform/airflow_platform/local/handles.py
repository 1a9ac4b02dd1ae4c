"""Handles on a running local platform for users, tests and benchmarks: sign-in, the API,
service accounts, the workers and the autoscaler's decisions, and fault injection."""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_platform.local import oidc, postgres
from airflow_platform.local.api import AirflowApi
from airflow_platform.local.autoscaler import drain, read_decisions
from airflow_platform.local.oidc_login import api_token
from airflow_platform.local.planning import spec_from_launch
from airflow_platform.local.state import StateDir
from airflow_platform.local.supervisor import Supervisor

REPO = Path(__file__).resolve().parents[3]


class NotUpError(RuntimeError):
    """The platform is not up (or not this far): the message says what is missing."""


@dataclass(frozen=True)
class SignInUser:
    name: str
    password: str
    role: str
    groups: list[str]


class PlatformHandles:
    state: StateDir
    sup: Supervisor

    def oidc(self, ports: dict[str, int] | None = None) -> oidc.LocalOidc:
        """The local OpenID Connect provider (on the port `up` chose for it)."""
        port = (ports or self.state.load().get("ports", {})).get("oidc")
        if port is None:
            raise NotUpError("the platform is not up (no OpenID Connect provider recorded)")
        return oidc.LocalOidc(self.sup, REPO, port)

    def admin_user(self) -> str:
        """The seeded user the rendered auth configuration maps to Admin (recorded by `up`)."""
        name = self.state.load().get("admin_user")
        if not name:
            raise NotUpError("the platform is not up (no admin user recorded): run `local up`")
        return str(name)

    def sign_in_users(self) -> list[SignInUser]:
        """The seeded users of the OpenID Connect provider: password, role, current groups."""
        generated = self.state.secrets()
        current = self.oidc().users()
        return [
            SignInUser(
                name=user.name,
                password=generated[oidc.password_key(user.name)],
                role=user.role,
                groups=list(current.get(user.name, {}).get("groups", user.groups)),
            )
            for user in oidc.USERS
        ]

    def set_user_groups(self, username: str, groups: list[str]) -> None:
        """Change a user's groups at the provider; Airflow applies them at its next login."""
        self.oidc().set_groups(username, groups)

    # --- handles for tests and benchmarks --------------------------------------------------
    def api_url(self) -> str:
        for spec_data in self.state.load().get("launch", {}).values():
            spec = spec_from_launch(spec_data)
            if spec.component == "api-server" and spec.http_probe:
                return f"http://127.0.0.1:{spec.http_probe[1]}"
        raise NotUpError("the platform is not up (no api-server recorded)")

    def api(self, username: str | None = None) -> AirflowApi:
        """A REST API client signed in as a seeded user (default: the one mapped to Admin),
        through the OpenID Connect provider."""
        username = username or self.admin_user()
        url = self.api_url()
        password = self.state.secrets()[oidc.password_key(username)]
        return AirflowApi(url, username, password, login=lambda: api_token(url, username, password))

    def create_service_account(self, role: str) -> tuple[str, str]:
        """A FAB database user for scripts (no browser): created with Airflow's CLI in the API
        server's environment, as `kubectl exec` into its pod would. Returns (name, password)."""
        launch = self.state.load()["launch"]
        api_server = next(v for v in launch.values() if v["component"] == "api-server")
        name, password = f"svc-{secrets.token_hex(3)}", secrets.token_urlsafe(16)
        airflow = str(Path(sys.executable).parent / "airflow")
        created = subprocess.run(
            [airflow, "users", "create", "--role", role, "--username", name,
             f"--password={password}", "--email", f"{name}@airflow.local",
             "--firstname", "Service", "--lastname", "Account"],
            env=api_server["env"], cwd=api_server["cwd"], capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        if created.returncode != 0:
            raise NotUpError(f"airflow users create failed: {created.stderr[-2000:]}")
        return name, password

    def stop_component(self, name: str) -> None:
        self.sup.stop(name)

    def restart_infra(self, name: str) -> None:
        """Start a stopped embedded service again on the same port (e.g. PostgreSQL)."""
        ports = self.state.load()["ports"]
        generated = self.state.secrets()
        if name == "postgres":
            postgres.start_postgres(self.sup, ports["postgres"], generated["postgres-password"])
        else:
            raise NotUpError(f"restart of {name} is not supported")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> int:
        return self.sup.kill(name, sig)

    def airflow_env(self) -> dict[str, str] | None:
        """The environment the local scheduler runs with (its Airflow configuration and
        database URL), as the chart renders it; None before `up`."""
        launch = self.state.load().get("launch", {})
        for record in launch.values():
            if record.get("component") == "scheduler":
                return dict(record["env"])
        return None

    def workers(self) -> dict[str, dict[str, Any]]:
        """Worker processes now: pid, alive, draining, Airflow hostname."""
        data = self.state.load()
        autoscaling = data.get("autoscaling") or {}
        records = data.get("processes", {})
        return {
            name: {
                "pid": records[name]["pid"],
                "alive": self.sup.alive(name),
                "draining": name in data.get("draining", {}),
                "hostname": autoscaling["hostnames"].get(name, ""),
            }
            for name in autoscaling.get("pool", [])
            if name in records
        }

    def scaling_decisions(self) -> dict[str, Any]:
        """The autoscaler's last observation and decision, workers and recent events."""
        return read_decisions(self.state)

    def drain_worker(self, name: str, reason: str = "requested") -> int:
        """What a scale-in does to a worker: SIGTERM to its Celery main process (warm
        shutdown); the watchdog forgets it once it has exited. Returns the PID."""
        return drain(self.state, name, reason=reason)
