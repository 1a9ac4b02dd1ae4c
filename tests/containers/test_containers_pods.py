"""The chart's pods as real containers, from the platform image built here.

Everything comes from the rendering: every Deployment and Job it holds is played, whatever
the components are; README.md lists what is translated for podman and why.
"""

from __future__ import annotations

import ast
import json
import os
import signal
from pathlib import Path

from containers_stack import Stack, wait_for

from airflow_platform.image import podman
from airflow_platform.local import services

DAGS = Path(__file__).with_name("data") / "dags"
FINISHED = ("success", "failed")


def inspect(container: str) -> dict:
    return json.loads(podman.run("inspect", container).stdout)[0]


def played(stack: Stack) -> list[tuple[str, str, bool]]:
    """(podman container, rendered container, is an init container) of every played pod."""
    out = []
    for plan in stack.plans:
        if plan.kind != "Deployment":
            continue
        out += [(plan.container_name(c), c, True) for c in plan.init_containers]
        out += [(plan.container_name(c), c, False) for c in plan.containers]
    return out


def test_every_rendered_workload_is_played(stack: Stack) -> None:
    assert stack.rendering is not None
    rendered = {d["metadata"]["name"] for d in stack.rendering.of_kind("Deployment", "Job")}
    assert rendered == {p.workload for p in stack.plans if p.kind in ("Deployment", "Job")}
    assert {p.component for p in stack.plans} >= {"migrations", "scheduler", "api-server"}


def test_every_container_runs_under_the_rendered_security_context(stack: Stack) -> None:
    for plan in [p for p in stack.plans if p.kind in ("Deployment", "Job")]:
        for container in plan.init_containers + plan.containers:
            wanted = plan.security[container]
            got = inspect(plan.container_name(container))
            assert got["Config"]["User"] == f"{wanted['runAsUser']}:{wanted['runAsGroup']}"
            assert got["HostConfig"]["ReadonlyRootfs"] is wanted["readOnlyRootFilesystem"] is True
            assert wanted["capabilities"]["drop"] == ["ALL"]
            assert got["EffectiveCaps"] in (None, [])
            if wanted.get("allowPrivilegeEscalation") is False:
                assert "no-new-privileges" in got["HostConfig"]["SecurityOpt"]


def test_a_write_outside_the_mounted_volumes_fails(stack: Stack) -> None:
    for name, container, init in played(stack):
        if init:
            continue
        plan = next(p for p in stack.plans if name.startswith(p.pod))
        probe = "/opt/airflow/.container-tier-write"
        denied = podman.run("exec", name, "touch", probe, check=False)
        assert denied.returncode != 0 and "Read-only file system" in denied.stderr, name
        assert podman.run("exec", name, "id", "-u").stdout.strip() == "50000"
        writable = [m for m in plan.mounts[container] if m == "/tmp"]
        for mount in writable:
            ok = podman.run("exec", name, "touch", f"{mount}/.container-tier-write", check=False)
            assert ok.returncode == 0, (name, mount, ok.stderr)


def test_the_migrations_job_completed(stack: Stack) -> None:
    jobs = [p for p in stack.plans if p.kind == "Job"]
    assert jobs
    for plan in jobs:
        for container in plan.containers:
            state = inspect(plan.container_name(container))["State"]
            assert (state["Status"], state["ExitCode"]) == ("exited", 0), container


def test_the_init_containers_finished(stack: Stack) -> None:
    inits = [(n, c) for n, c, init in played(stack) if init]
    assert inits
    for name, _ in inits:
        state = inspect(name)["State"]
        assert (state["Status"], state["ExitCode"]) == ("exited", 0), name


def test_every_probe_passes_inside_its_container(stack: Stack) -> None:
    checked = 0
    for plan in [p for p in stack.plans if p.kind == "Deployment"]:
        for container in plan.containers:
            for kind, probe in plan.probes[container].items():
                result = stack.run_probe(plan, container, probe)
                assert result.ok, f"{plan.pod}/{container} {kind}: {result.detail}"
                checked += 1
    assert checked >= 2 * len([p for p in stack.plans if p.kind == "Deployment"])


def _upload_dags(stack: Stack) -> None:
    assert stack.host is not None
    s3, _ = services.aws_clients(stack.host.moto_endpoint)
    for path in sorted(DAGS.glob("*.py")):
        s3.put_object(Bucket=stack.bucket, Key=f"dags/{path.name}", Body=path.read_bytes())


def _trigger(stack: Stack, dag_id: str) -> str:
    api = stack.api()
    wait_for(f"{dag_id} parsed", lambda: api.dag(dag_id), 240, 2)
    api.call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
    run = api.call("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None})
    return str(run["dag_run_id"])


def _run_state(stack: Stack, dag_id: str, run_id: str) -> str:
    return str(stack.api().get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"])


def test_a_dag_from_the_bucket_runs_on_a_worker_with_requirements_plugins_and_startup(
    stack: Stack,
) -> None:
    _upload_dags(stack)
    run_id = _trigger(stack, "container_probe")
    state = wait_for(
        "the run to finish",
        lambda: (s := _run_state(stack, "container_probe", run_id)) in FINISHED and s,
        300,
        2,
    )
    assert state == "success"
    xcom = stack.api().get(
        f"/api/v2/dags/container_probe/dagRuns/{run_id}/taskInstances/inspect_environment"
        "/xcomEntries/return_value?deserialize=true&stringify=false"
    )
    value = xcom["value"]
    value = ast.literal_eval(value) if isinstance(value, str) else value
    worker = stack.deployment("worker")
    assert value == {
        "requirement": "cowsay",
        "plugin": "plugin-from-plugins-zip",
        "startup": "ran-in-worker",
        "hostname": worker.pod,
    }


def test_a_killed_scheduler_is_restarted_and_the_run_completes(stack: Stack) -> None:
    _upload_dags(stack)
    run_id = _trigger(stack, "container_slow")
    api = stack.api()
    wait_for(
        "the task to run",
        lambda: (
            api.get(f"/api/v2/dags/container_slow/dagRuns/{run_id}/taskInstances")[
                "task_instances"
            ][0]["state"]
            == "running"
        ),
        240,
        1,
    )
    scheduler = stack.deployment("scheduler")
    name = scheduler.container_name("scheduler")
    before = stack.state(name)[2]
    # SIGKILL from outside, as the OOM killer or a crash would: `podman kill` marks the
    # container stopped by the user, which its restart policy then leaves alone.
    os.kill(int(inspect(name)["State"]["Pid"]), signal.SIGKILL)
    wait_for(
        "the restart policy to restart the scheduler",
        lambda: stack.state(name)[0] == "running" and stack.state(name)[2] > before,
        120,
    )
    state = wait_for(
        "the run to finish",
        lambda: (s := _run_state(stack, "container_slow", run_id)) in FINISHED and s,
        300,
        2,
    )
    assert state == "success"
    stack.wait_ready(scheduler, 300)


def test_the_helm_test_pod_passes_against_the_api_server(stack: Stack) -> None:
    tests = [p for p in stack.plans if p.kind == "Pod" and p.hook == "test"]
    assert tests, "the chart renders no helm test pod with tests.enabled"
    for plan in tests:
        stack.play(plan)
        codes = stack.wait_exited(plan, 180)
        logs = {c: stack.logs(plan.container_name(c)) for c in plan.containers}
        assert set(codes.values()) == {0}, logs
        assert any('"healthy"' in text for text in logs.values()), logs
