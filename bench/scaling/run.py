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

The modes run interleaved, one cycle each in turn (bench/_runner.py), --cycles times.
Usage: .venv/bin/python bench/scaling/run.py [--cycles 3] [--task-seconds 4]
Writes bench/results/scaling.txt.
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3
import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "tests" / "scaling"), str(REPO / "bench")]

from _runner import Report, interleave  # noqa: E402
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


def bench_burst_to_decision(workdir: Path, history_rows: int, burst: int) -> dict[str, list[float]]:
    print(f"  PostgreSQL + airflow db migrate (task_instance with {history_rows} finished rows)...")
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
        return {"idle": [v * 1e3 for v in idle], "decide": [v * 1e3 for v in decide]}
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


class ModeRig:
    """One mode's queue, Celery settings and folders; each run is one scale-in cycle with
    its own staying worker."""

    def __init__(self, mode: str, base_config: dict, sqs, workdir: Path, args) -> None:
        self.mode, self.sqs, self.args = mode, sqs, args
        self.queue_url = create_queue(sqs, args.visibility_timeout)
        self.config = copy.deepcopy(base_config)
        self.config["broker_transport_options"]["predefined_queues"]["default"]["url"] = (
            self.queue_url
        )
        self.config["result_backend"] = None
        if mode == "naive-group":  # Celery's own defaults
            self.config["task_acks_late"] = False
            self.config["worker_prefetch_multiplier"] = 4
        self.dir = workdir / mode
        self.gates = self.dir / "gates"
        self.gates.mkdir(parents=True)
        self.log = self.dir / "executions.log"
        self.cycle = 0

    def run(self) -> dict[str, float]:
        stay = DrillWorker(f"stay{self.cycle}", self.config, 2, self.dir, self.log, self.gates)
        stay.start()
        try:
            r = run_cycle(
                self.mode, self.cycle, self.config, stay, self.dir, self.log, self.gates,
                self.sqs, self.queue_url, self.args.task_seconds, self.args.visibility_timeout,
            )  # fmt: skip
        finally:
            stay.stop()
            self.cycle += 1
        return {"sent": r.sent, "ok": r.completed_once, "lost": r.lost,
                "interrupted": r.interrupted, "duplicates": r.duplicates, "harmed": r.harmed,
                "stop": r.drain_seconds}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--task-seconds", type=float, default=4.0)
    parser.add_argument("--visibility-timeout", type=int, default=15)
    parser.add_argument("--history-rows", type=int, default=20_000)
    parser.add_argument("--burst", type=int, default=40)
    parser.add_argument("--modes", default="drain,naive-group,naive-kill")
    args = parser.parse_args()
    report = Report("scaling")
    say = report.say

    workdir = Path(tempfile.mkdtemp(prefix="bench-scaling-"))
    say("== decision latency")
    policy = interleave({"policy": lambda: {"us": bench_policy()}}, 3, say)["policy"]["us"]
    report.figure("scaling.policy_us", "policy.observe() per observation", policy, "µs")
    db = bench_burst_to_decision(workdir, args.history_rows, args.burst)
    report.figure("scaling.read_demand_idle_ms",
                  f"read_demand() on {args.history_rows} finished rows, idle, 50 reads",
                  db["idle"], "ms")  # fmt: skip
    report.figure("scaling.burst_decision_ms",
                  f"burst of {args.burst} queued -> scale_up decision (query + policy), 50 reads",
                  db["decide"], "ms")  # fmt: skip
    say("  (a live scaler adds its polling interval; KEDA's HPA path adds up to its 15 s sync)")

    say(f"== scale-in cycles (tasks of {args.task_seconds:g}s), modes interleaved")
    port = free_port()
    moto = ManagedProcess(
        "moto",
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        workdir / "moto.log",
    ).start()
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    try:
        wait_until(lambda: moto.check_alive() or port_open(port), 30, "moto server")
        endpoint = f"http://127.0.0.1:{port}"
        sqs = boto3.client("sqs", endpoint_url=endpoint)
        placeholder = SqsBroker(endpoint, "http://placeholder.invalid/123456789012/default")
        base_config = airflow_celery_config(
            placeholder.platform_env(2, args.visibility_timeout), workdir / "airflow-celery"
        )
        rigs = {m: ModeRig(m, base_config, sqs, workdir, args) for m in args.modes.split(",")}
        runs = interleave({m: rig.run for m, rig in rigs.items()}, args.cycles, say)
    finally:
        moto.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    say("== summary (tasks summed over all cycles; stop time median, spread min-max)")
    for mode, r in runs.items():
        totals = {k: int(sum(r[k])) for k in ("sent", "ok", "lost", "interrupted", "duplicates",
                                              "harmed")}  # fmt: skip
        for k, v in totals.items():
            report.value(f"scaling.{mode}.{k}", f"{mode}, tasks {k}", v, digits=0)
        report.figure(f"scaling.{mode}.stop", f"{mode}, worker stop took", r["stop"], digits=1)
    say("goal: drain harms 0 tasks")
    report.write()


if __name__ == "__main__":
    main()
