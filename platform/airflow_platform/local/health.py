"""Health and status: is each process up and well, by the rendered probe when it is HTTP,
else by what the API server reports for its kind; and the rows `local status` prints,
each with where its log is (the file named after its MWAA log group)."""

from __future__ import annotations

import time
from typing import Any

from airflow_platform.local.autoscaler import read_decisions
from airflow_platform.local.http import request, status_of
from airflow_platform.local.lifecycle import INFRA
from airflow_platform.local.mapping import ProcessSpec
from airflow_platform.local.planning import api_spec, spec_from_launch
from airflow_platform.local.state import StateDir
from airflow_platform.local.supervisor import START_MARK, Supervisor
from airflow_platform.procs import port_open


class HealthError(RuntimeError):
    """A component did not become healthy; the message names it and its log."""


class Health:
    def __init__(self, state: StateDir, sup: Supervisor, say=lambda _m: None) -> None:
        self.state = state
        self.sup = sup
        self.say = say

    def wait_healthy(self, components: list[ProcessSpec], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = {s.name: s for s in components}
        api = api_spec(components)
        assert api.http_probe
        while pending:
            for name in list(pending):
                if not self.sup.alive(name):
                    raise HealthError(
                        f"{name} exited while starting; last lines of {self.state.log(name)}:\n"
                        f"{self.sup.log_tail(name)}"
                    )
            health = self.monitor_health(api)
            for name, spec in list(pending.items()):
                if self.component_health(spec, health)[0]:
                    del pending[name]
                    self.say(f"{name}: healthy")
            if not pending:
                return
            if time.monotonic() > deadline:
                raise HealthError(
                    "not healthy in time: "
                    + ", ".join(
                        f"{n} ({self.component_health(s, health)[1]}; log {self.state.log(n)})"
                        for n, s in pending.items()
                    )
                )
            time.sleep(0.5)

    def monitor_health(self, api: ProcessSpec) -> dict[str, Any]:
        url = api.url("/api/v2/monitor/health")
        try:
            status, body = request("GET", url or "", timeout=3)
        except OSError:
            return {}
        return body if status == 200 and isinstance(body, dict) else {}

    HEALTH_SECTIONS = {
        "scheduler": "scheduler",
        "dag-processor": "dag_processor",
        "triggerer": "triggerer",
    }

    def component_health(self, spec: ProcessSpec, health: dict[str, Any]) -> tuple[bool, str]:
        """Health by the rendered probe when it is HTTP; otherwise by what the API server
        reports for the component's kind (plus this process's own start-up line)."""
        if not self.sup.alive(spec.name):
            return False, "not running"
        if spec.component == "api-server":
            ok = bool(health) and health.get("metadatabase", {}).get("status") == "healthy"
            return ok, "/api/v2/monitor/health ok" if ok else "API not answering yet"
        if spec.http_probe:
            path = spec.http_probe[0]
            ok = status_of(spec.url(path) or "") == 200
            return ok, f"probe {path} " + ("ok" if ok else "failing")
        section = self.HEALTH_SECTIONS.get(spec.component)
        if section:
            state = (health.get(section) or {}).get("status")
            own = self._started_line_seen(spec)
            ok = state == "healthy" and own
            return ok, f"{section} {state or 'unknown'}" + ("" if own else ", starting")
        if spec.component == "worker":
            ok = " ready." in self._log_since_start(spec.name)
            return ok, "celery worker ready" if ok else "celery worker starting"
        return True, "running"

    def _log_since_start(self, name: str) -> str:
        text = (
            self.state.log(name).read_text(errors="replace")
            if self.state.log(name).exists()
            else ""
        )
        return text.rsplit(START_MARK, 1)[-1]

    STARTED_LINES = {
        "scheduler": "starting the scheduler",
        "dag-processor": "starting the dag processor",
        "triggerer": "starting the triggerer",
    }

    def _started_line_seen(self, spec: ProcessSpec) -> bool:
        """Replicas share one health section; each must have logged its own start."""
        marker = self.STARTED_LINES.get(spec.component)
        return marker is None or marker in self._log_since_start(spec.name).lower()

    # --- status / down ----------------------------------------------------------------------
    def status(self) -> list[dict[str, Any]]:
        data = self.state.load()
        rows: list[dict[str, Any]] = []
        for name in INFRA:
            rec = self.sup.record(name)
            alive = self.sup.alive(name)
            port = (rec.ports.get(name) if rec else None) or data.get("ports", {}).get(name)
            rows.append(
                {
                    "name": name,
                    "pid": rec.pid if rec else None,
                    "alive": alive,
                    "healthy": alive and bool(port and port_open(port)),
                    "detail": f"127.0.0.1:{port}" if port else "",
                }
            )
        watchdog = self.sup.record("watchdog")
        rows.append(
            {
                "name": "watchdog",
                "pid": watchdog.pid if watchdog else None,
                "alive": self.sup.alive("watchdog"),
                "healthy": self.sup.alive("watchdog"),
                "detail": "restarts components that die",
            }
        )
        autoscaling = data.get("autoscaling") or {}
        pool = autoscaling.get("pool", [])
        specs = {n: s for n, s in data.get("specs", {}).items() if n not in pool}
        launch = data.get("launch", {})
        api_name = next((n for n, s in specs.items() if s["component"] == "api-server"), None)
        health = {}
        if api_name and api_name in launch and self.sup.alive(api_name):
            health = self.monitor_health(spec_from_launch(launch[api_name]))
        for name, summary in specs.items():
            rec = self.sup.record(name)
            spec = spec_from_launch(launch[name]) if name in launch else None
            if spec is None:
                continue
            if summary["component"] == "dagsync" or name == "dagsync":
                ready = bool(spec.http_probe) and status_of(spec.url("/readyz") or "") == 200
                ok, detail = ready, "synced (/readyz 200)" if ready else "not ready"
                ok = ok and self.sup.alive(name)
            else:
                ok, detail = self.component_health(spec, health)
            if spec.component == "api-server" and spec.http_probe:
                detail += f" — http://127.0.0.1:{spec.http_probe[1]}"
            rows.append(
                {
                    "name": name,
                    "pid": rec.pid if rec else None,
                    "alive": self.sup.alive(name),
                    "healthy": ok,
                    "detail": detail,
                }
            )
        if autoscaling:
            rows += self._worker_rows(data, health)
        for row in rows:
            log = self.state.log(row["name"])
            row["log"] = str(log) if log.exists() else ""
        return rows

    def _worker_rows(self, data: dict[str, Any], health: dict[str, Any]) -> list[dict[str, Any]]:
        """The workers the autoscaler runs, then its last decision."""
        autoscaling = data["autoscaling"]
        draining = data.get("draining", {})
        decisions = read_decisions(self.state)
        running = {n: w.get("running_tasks", 0) for n, w in decisions.get("workers", {}).items()}
        rows: list[dict[str, Any]] = []
        for name in autoscaling["pool"]:
            rec = self.sup.record(name)
            if rec is None:
                continue
            alive = self.sup.alive(name)
            if name in draining:
                since = time.time() - draining[name]["since"]
                ok, detail = alive, f"draining: SIGTERM {since:.0f}s ago"
            else:
                spec = spec_from_launch(autoscaling["launch"][name])
                ok, detail = self.component_health(spec, health)
            detail += f"; {running.get(name, 0)} running task(s)"
            rows.append(
                {"name": name, "pid": rec.pid, "alive": alive, "healthy": ok, "detail": detail}
            )
        decision = decisions.get("decision")
        config = autoscaling["config"]
        limits = (
            f"{config['min_workers']}..{config['max_workers']} workers, "
            f"{config['tasks_per_worker']} tasks each, {config['scale_in_idle_seconds']:g}s idle"
        )
        if decision:
            age = time.time() - decisions["at"]
            obs = decisions["observation"]
            detail = (
                f"{decision['action']} -> {decision['desired']} ({decision['reason']}); "
                f"{obs['running']} running, {obs['queued']} queued; {limits}; {age:.0f}s ago"
            )
        else:
            detail = f"no decision yet; {limits}"
        fresh = bool(decision) and time.time() - decisions["at"] < 30
        watchdog = self.sup.alive("watchdog")
        rows.append(
            {
                "name": "autoscaler",
                "pid": None,
                "alive": watchdog,
                "healthy": watchdog and (fresh or not decision),
                "detail": detail,
            }
        )
        return rows
