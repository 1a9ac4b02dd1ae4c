"""`ops` on the local platform (`--local`): it has no Kubernetes, so the local runner's
state directory stands for the cluster. Status groups `local status`'s rows by component
(scheduler-0 and scheduler-1 are the scheduler Deployment's two replicas); the metadata
database's view comes from `ops probe` run with the local scheduler's environment, which
is also where `ops airflow --local` runs its command. Hibernation stops the Airflow
processes and the watchdog and keeps PostgreSQL, moto, OpenBao and the state."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow_platform.local.platform import INFRA  # the embedded services hibernation keeps
from airflow_platform.ops.errors import OpsError
from airflow_platform.ops.model import (
    Component,
    EnvironmentStatus,
    Heartbeat,
    Workers,
    derive_status,
)

NOT_COMPONENTS = (*INFRA, "watchdog", "autoscaler")


def _platform(state_dir: Path | None) -> Any:
    from airflow_platform.local.platform import LocalPlatform

    platform = LocalPlatform(state_dir)
    if not platform.state.load().get("launch"):
        raise OpsError(
            f"no local platform in {platform.state.root}: start one with "
            "`airflow-platform local up`, or pass its --state-dir"
        )
    return platform


def component_of(name: str) -> str:
    """scheduler-1 -> scheduler, api-server-0 -> api-server, dagsync -> dagsync."""
    head, _, tail = name.rpartition("-")
    return head if head and tail.isdigit() else name


def scheduler_launch(platform: Any) -> dict[str, Any]:
    launch = platform.state.load().get("launch", {})
    for name in sorted(launch):
        record = launch[name]
        if record.get("component") == "scheduler":
            return record
    raise OpsError(f"no scheduler recorded in {platform.state.root}")


def airflow_bin(record: dict[str, Any]) -> str:
    """The `airflow` beside the scheduler's own program (the local platform's virtualenv)."""
    for candidate in (Path(record["argv"][0]).parent / "airflow",
                      Path(sys.executable).parent / "airflow"):  # fmt: skip
        if candidate.exists():
            return str(candidate)
    raise OpsError("the local platform's `airflow` program is missing: run ./scripts/bootstrap.sh")


def run_airflow(platform: Any, argv: Sequence[str], capture: bool = False) -> Any:
    """`argv` with the local scheduler's environment and working directory; a leading
    `airflow` is the local platform's."""
    record = scheduler_launch(platform)
    env = {**record["env"], "PATH": os.environ.get("PATH", "")}
    args = list(argv)
    if args[:1] == ["airflow"]:
        args[0] = airflow_bin(record)
    return subprocess.run(
        args, env=env, cwd=record["cwd"], capture_output=capture, text=True, check=False
    )


def probe_locally(platform: Any) -> dict[str, Any]:
    done = run_airflow(platform, [sys.executable, "-m", "airflow_platform.ops.probe"], True)
    if done.returncode != 0:
        raise OpsError(f"ops probe failed (exit {done.returncode}): {done.stderr[-400:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def local_status(state_dir: Path | None, use_probe: bool = True) -> EnvironmentStatus:
    platform = _platform(state_dir)
    data = platform.state.load()
    rows = platform.status()
    hibernated = bool(data.get("hibernated"))
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["name"] in NOT_COMPONENTS:
            continue
        groups.setdefault(component_of(row["name"]), []).append(row)
    autoscaling = data.get("autoscaling") or {}
    config = autoscaling.get("config") or {}
    components = []
    for name, members in sorted(groups.items()):
        if name == "worker":
            desired = max(len(members), int(config.get("min_workers", 0)))
        else:
            desired = len(members)
        ready = sum(1 for m in members if m["alive"] and m["healthy"])
        detail = "; ".join(f"{m['name']}: {m['detail']}" for m in members)
        components.append(Component(name, ready, 0 if hibernated else desired, detail))
    worker_rows = groups.get("worker", [])
    workers = (
        Workers(
            sum(1 for m in worker_rows if m["healthy"]),
            config.get("min_workers"),
            config.get("max_workers"),
            "local autoscaler",
            paused=hibernated,
        )
        if config
        else None
    )
    rendered = platform.state.rendered
    last = (
        datetime.fromtimestamp(rendered.stat().st_mtime, UTC).isoformat()
        if rendered.exists()
        else ""
    )
    running = any(r["alive"] for r in rows if r["name"] not in INFRA)
    status = EnvironmentStatus(
        source="local",
        environment=str(platform.values().get("environmentName", "local")),
        status="",
        revision=str(data.get("migrated", ""))[:12],
        last_update=last,
        release_status="deployed",
        components=components,
        workers=workers,
        migrations="applied" if data.get("migrated") else "not run",
    )
    if use_probe and running and not hibernated:
        try:
            found = probe_locally(platform)
        except OpsError as exc:
            status.notes.append(f"database view unknown: {exc}")
        else:
            status.heartbeat = Heartbeat(**found["heartbeat"])
            status.import_errors = found["import_errors"]
            status.canary = found["canary"]
    status.status = derive_status(
        "deployed",
        1,
        hibernated=hibernated,
        snapshot_running=False,
        migrations_running=False,
        components=components,
        heartbeat=status.heartbeat,
    )
    if not running and not hibernated:
        status.status = "STOPPED"
    return status


def hibernate_local(state_dir: Path | None) -> list[str]:
    platform = _platform(state_dir)
    data = platform.state.load()
    if data.get("hibernated"):
        raise OpsError(
            f"the local platform in {platform.state.root} is already hibernated: "
            "`airflow-platform ops resume --local` brings it back"
        )
    records = platform.sup.records()
    apps = [n for n in records if n not in (*INFRA, "watchdog") and platform.sup.alive(n)]
    if not apps:
        raise OpsError(
            f"nothing runs in {platform.state.root}: `airflow-platform local up` starts it"
        )
    # The watchdog first, so nothing is restarted or scaled while the rest stops.
    platform.sup.stop("watchdog")
    launch = {**data.get("launch", {}), **(data.get("autoscaling") or {}).get("launch", {})}
    stopped = []
    for name in apps:
        platform.sup.stop(name)
        stopped.append(name)
    platform.state.update(
        hibernated={"at": time.time(), "processes": {n: launch[n] for n in stopped if n in launch}}
    )
    return stopped


def resume_local(state_dir: Path | None, timeout: float = 300) -> list[str]:
    from airflow_platform.procs import wait_until

    platform = _platform(state_dir)
    saved = platform.state.load().get("hibernated")
    if not saved:
        raise OpsError(
            f"the local platform in {platform.state.root} is not hibernated: nothing to "
            "resume (`airflow-platform ops status --local` shows its state)"
        )
    for name in INFRA:
        if not platform.sup.alive(name):
            raise OpsError(
                f"{name} is not running: the hibernated platform lost its services; "
                "`airflow-platform local up` starts everything again with the state kept"
            )
    started = []
    for name, record in saved["processes"].items():
        platform.sup.start(
            name,
            record["argv"],
            env=record["env"],
            cwd=Path(record["cwd"]),
            ports={str(k): v for k, v in record.get("ports", {}).items()},
        )
        platform.sup.start_companions(record.get("companions", []))  # a worker's log server
        started.append(name)
    platform.state.update(hibernated=None)
    platform.life.ensure_watchdog()

    def healthy() -> bool:
        rows = {r["name"]: r for r in platform.status()}
        return all(rows.get(n, {}).get("healthy") for n in started)

    wait_until(healthy, timeout, "every resumed component healthy", interval=0.5)
    return started
