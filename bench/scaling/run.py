"""Scaling benchmark: decision latency, and tasks lost or failed over scale-in cycles.

1. Decision latency after a burst: the policy's own cost per observation, and the cost of
   reading demand from a real PostgreSQL migrated by `airflow db migrate` (a task_instance
   table holding finished history plus the burst).
2. Scale-in cycles with real Celery workers on a moto SQS queue: each cycle starts a worker,
   gives two workers a burst of tasks, scales one of them in while it runs tasks, and counts
   what happened to every task. Modes:
   - drain:        the platform's settings (acks late, prefetch 1) and SIGTERM to the
                   worker's main process, which is what Kubernetes sends to the container.
   - naive-group:  Celery's defaults (acks early, prefetch 4) and SIGTERM to every process
                   of the worker (a shell entrypoint or init that forwards to the group).
   - naive-kill:   the platform's settings but a grace period shorter than the tasks, so
                   the worker is SIGKILLed mid-task (Kubernetes' default 30 s vs long tasks).

Usage: .venv/bin/python bench/scaling/run.py [--cycles 5] [--task-seconds 4]
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3
import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "scaling"))

from celery_harness import (  # noqa: E402
    DrillWorker,
    Executions,
    SqsBroker,
    airflow_celery_config,
    create_queue,
    make_app,
    queue_counts,
    send,
)
from embedded_pg import EmbeddedPostgres, migrate_airflow_db  # noqa: E402

from airflow_platform.procs import ManagedProcess, free_port, port_open, wait_until  # noqa: E402
from airflow_platform.scaling.demand import make_engine, read_demand  # noqa: E402
from airflow_platform.scaling.policy import (  # noqa: E402
    Action,
    Observation,
    PolicyConfig,
    ScalingPolicy,
)


def say(text: str) -> None:
    print(text, flush=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ---------------------------------------------------------------- decision latency


def bench_policy(observations: int = 200_000) -> float:
    """Mean microseconds per observe() over a bursty trace."""
    policy = ScalingPolicy(PolicyConfig(1, 10, 5, 120))
    current = 1
    start = time.perf_counter()
    for i in range(observations):
        burst = 60 if i % 400 < 40 else (i % 7)
        decision = policy.observe(Observation(i * 0.5, burst, i % 3, min(current, 3), current))
        current = decision.desired
    return (time.perf_counter() - start) / observations * 1e6


def bench_burst_to_decision(workdir: Path, history_rows: int, burst: int) -> dict[str, float]:
    say(f"  PostgreSQL + airflow db migrate (task_instance with {history_rows} finished rows)...")
    server = EmbeddedPostgres().start()
    try:
        url = server.create_database("airflow")
        migrate_airflow_db(url, workdir / "airflow-home")
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO dag_run (dag_id, run_id, run_type, run_after)"
                    " VALUES ('bench', 'r', 'manual', now())"
                )
            )
            conn.execute(
                sa.text(
                    "INSERT INTO task_instance (id, task_id, dag_id, run_id, try_number, pool,"
                    " pool_slots, state, hostname, queue)"
                    " SELECT gen_random_uuid(), 'h' || g, 'bench', 'r', 1, 'default_pool', 1,"
                    " 'success', 'w' || (g % 10), 'default' FROM generate_series(1, :n) g"
                ),
                {"n": history_rows},
            )
            conn.execute(sa.text("ANALYZE task_instance"))
        idle = [timed(lambda: read_demand(engine)) for _ in range(50)]
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO task_instance (id, task_id, dag_id, run_id, try_number, pool,"
                    " pool_slots, state, queue)"
                    " SELECT gen_random_uuid(), 'b' || g, 'bench', 'r', 1, 'default_pool', 1,"
                    " 'queued', 'default' FROM generate_series(1, :n) g"
                ),
                {"n": burst},
            )
        policy = ScalingPolicy(PolicyConfig(1, 10, 5, 120))
        policy.observe(Observation(0, 0, 0, 0, 1))
        decide: list[float] = []
        for i in range(50):
            t0 = time.perf_counter()
            demand = read_demand(engine)
            decision = policy.observe(
                Observation(1 + i, demand.running, demand.queued, demand.busy_workers, 1)
            )
            decide.append(time.perf_counter() - t0)
            assert decision.action is Action.SCALE_UP and decision.desired == min(
                10, -(-burst // 5)
            )
        engine.dispose()
        return {
            "query_idle_p50_ms": pct(idle, 0.5) * 1e3,
            "query_idle_p95_ms": pct(idle, 0.95) * 1e3,
            "burst_decision_p50_ms": pct(decide, 0.5) * 1e3,
            "burst_decision_p95_ms": pct(decide, 0.95) * 1e3,
        }
    finally:
        server.stop()


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# ---------------------------------------------------------------- scale-in cycles


@dataclass
class CycleResult:
    sent: int = 0
    completed_once: int = 0
    lost: int = 0  # never completed by the end of the cycle
    interrupted: int = 0  # executions cut short (a failed try in Airflow)
    duplicates: int = 0  # extra executions of a task that already ran to completion
    harmed: int = 0  # tasks with any of the above
    drain_seconds: float = 0.0


def run_cycle(
    mode: str,
    cycle: int,
    config: dict,
    stay: DrillWorker,
    workdir: Path,
    log: Path,
    gates: Path,
    sqs,
    queue_url: str,
    task_seconds: float,
    visibility_timeout: int,
) -> CycleResult:
    leave = DrillWorker(f"leave{cycle}", config, 2, workdir, log, gates).start()
    producer = make_app(config)
    keys = [f"{mode}-c{cycle}-{i}-{uuid.uuid4().hex[:4]}" for i in range(6)]
    send(producer, keys, max_seconds=task_seconds)
    wait_until(
        lambda: any(
            leave.name in w for k in keys for w in Executions.read(log).start_workers.get(k, [])
        ),
        60,
        "the leaving worker to run a task",
    )
    t0 = time.monotonic()
    if mode == "drain":
        leave.terminate_main()
        leave.wait_exit(timeout=task_seconds * 6 + 60)
    elif mode == "naive-group":
        leave.terminate_group()
        try:
            leave.wait_exit(timeout=task_seconds * 6 + 60)
        except Exception:
            leave.kill()
            leave.wait_exit(timeout=30)
    else:  # naive-kill: SIGTERM, then SIGKILL after a grace shorter than the tasks
        os.kill(leave.pid, signal.SIGTERM)
        try:
            leave.wait_exit(timeout=task_seconds / 4)
        except Exception:
            leave.kill()
            leave.wait_exit(timeout=30)
    drain = time.monotonic() - t0

    # Let the remaining worker finish everything that can still come back (redeliveries
    # take the queue's visibility timeout).
    deadline = time.monotonic() + visibility_timeout + task_seconds * 2 + 10
    while time.monotonic() < deadline:
        seen = Executions.read(log)
        if all(seen.dones[k] for k in keys) and queue_counts(sqs, queue_url) == (0, 0):
            break
        time.sleep(0.5)
    seen = Executions.read(log)
    result = CycleResult(sent=len(keys), drain_seconds=drain)
    for key in keys:
        starts, dones = seen.starts[key], seen.dones[key]
        result.completed_once += dones == 1 and starts == 1
        result.lost += dones == 0
        result.interrupted += starts - dones
        result.duplicates += max(0, dones - 1)
        result.harmed += not (starts == 1 and dones == 1)
    stay.process.check_alive()
    return result


def bench_cycles(
    mode: str,
    base_config: dict,
    endpoint: str,
    sqs,
    workdir: Path,
    cycles: int,
    task_seconds: float,
    visibility_timeout: int,
) -> list[CycleResult]:
    queue_url = create_queue(sqs, visibility_timeout)
    config = copy.deepcopy(base_config)
    config["broker_transport_options"]["predefined_queues"]["default"]["url"] = queue_url
    config["result_backend"] = None
    if mode == "naive-group":  # Celery's own defaults
        config["task_acks_late"] = False
        config["worker_prefetch_multiplier"] = 4
    mode_dir = workdir / mode
    gates = mode_dir / "gates"
    gates.mkdir(parents=True)
    log = mode_dir / "executions.log"
    stay = DrillWorker("stay", config, 2, mode_dir, log, gates).start()
    results = []
    try:
        for cycle in range(cycles):
            result = run_cycle(
                mode, cycle, config, stay, mode_dir, log, gates, sqs, queue_url,
                task_seconds, visibility_timeout,
            )  # fmt: skip
            say(
                f"  {mode:<12} cycle {cycle + 1}: sent {result.sent}, ok {result.completed_once},"
                f" lost {result.lost}, interrupted {result.interrupted},"
                f" duplicates {result.duplicates}, stop took {result.drain_seconds:.1f}s"
            )
            results.append(result)
    finally:
        stay.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--task-seconds", type=float, default=4.0)
    parser.add_argument("--visibility-timeout", type=int, default=15)
    parser.add_argument("--history-rows", type=int, default=20_000)
    parser.add_argument("--burst", type=int, default=40)
    parser.add_argument("--modes", default="drain,naive-group,naive-kill")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-scaling-"))
    say("== decision latency")
    per_obs_us = bench_policy()
    say(f"  policy.observe(): {per_obs_us:.2f} µs per observation (burst -> scale_up: 1 step)")
    db = bench_burst_to_decision(workdir, args.history_rows, args.burst)
    say(
        f"  read_demand() on {args.history_rows} finished rows, idle: "
        f"p50 {db['query_idle_p50_ms']:.2f} ms, p95 {db['query_idle_p95_ms']:.2f} ms"
    )
    say(
        f"  burst of {args.burst} queued -> scale_up decision (query + policy): "
        f"p50 {db['burst_decision_p50_ms']:.2f} ms, p95 {db['burst_decision_p95_ms']:.2f} ms"
    )
    say("  (a live scaler adds its polling interval; KEDA's HPA path adds up to its 15 s sync)")

    say(f"== scale-in cycles ({args.cycles} per mode, tasks of {args.task_seconds:g}s)")
    port = free_port()
    moto = ManagedProcess(
        "moto",
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        workdir / "moto.log",
    ).start()
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    totals: dict[str, CycleResult] = {}
    try:
        wait_until(lambda: moto.check_alive() or port_open(port), 30, "moto server")
        endpoint = f"http://127.0.0.1:{port}"
        sqs = boto3.client("sqs", endpoint_url=endpoint)
        placeholder = SqsBroker(endpoint, "http://placeholder.invalid/123456789012/default")
        base_config = airflow_celery_config(
            placeholder.platform_env(2, args.visibility_timeout), workdir / "airflow-celery"
        )
        for mode in args.modes.split(","):
            results = bench_cycles(
                mode, base_config, endpoint, sqs, workdir, args.cycles, args.task_seconds,
                args.visibility_timeout,
            )  # fmt: skip
            total = CycleResult()
            for r in results:
                total.sent += r.sent
                total.completed_once += r.completed_once
                total.lost += r.lost
                total.interrupted += r.interrupted
                total.duplicates += r.duplicates
                total.harmed += r.harmed
            total.drain_seconds = statistics.mean(r.drain_seconds for r in results)
            totals[mode] = total
    finally:
        moto.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    say("== summary (over all cycles)")
    say(f"  {'mode':<12} {'sent':>5} {'ok':>5} {'lost':>5} {'interrupted':>12} {'dupes':>6}"
        f" {'stop s':>7}")  # fmt: skip
    for mode, t in totals.items():
        say(
            f"  {mode:<12} {t.sent:>5} {t.completed_once:>5} {t.lost:>5} {t.interrupted:>12}"
            f" {t.duplicates:>6} {t.drain_seconds:>7.1f}"
        )
    drain = totals.get("drain")
    if drain:
        bad = drain.harmed
        say(f"  drain: {bad} of {drain.sent} tasks lost, interrupted or duplicated (goal 0)")
        for mode, t in totals.items():
            if mode == "drain":
                continue
            say(
                f"  {mode}: {t.harmed} of {t.sent} tasks harmed vs drain {bad}"
                f" (ok ratio drain/{mode} = {drain.completed_once / max(t.completed_once, 1):.2f})"
            )


if __name__ == "__main__":
    main()
