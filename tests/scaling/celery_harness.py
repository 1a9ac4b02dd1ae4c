"""Real Celery workers on a real (moto) SQS queue, configured the way Airflow configures them.

The Celery configuration comes from Airflow's own `get_default_celery_config` evaluated in
a subprocess with the platform's environment variables, so the tests check the mapping
from the chart's env to Celery's settings, not a hand-written copy. Workers run a probe
task that records every start and finish in an append-only log; a task can be held open
with a gate file so a test decides when it ends instead of guessing durations.

Also used by bench/scaling/run.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from celery import Celery

from airflow_platform.procs import ManagedProcess, tail, wait_until
from airflow_platform.scaling.celery_settings import worker_celery_environment

HARNESS_DIR = Path(__file__).resolve().parent
CONFIG_ENV = "DRILL_CELERY_CONFIG"
LOG_ENV = "DRILL_LOG"
GATES_ENV = "DRILL_GATES"
TASK_NAME = "drill.run"
QUEUE = "default"  # Airflow's default queue, as the platform's predefined queue names it


def make_app(config: dict) -> Celery:
    app = Celery("scaling-drill", config_source=config)

    @app.task(name=TASK_NAME)
    def run(key: str, max_seconds: float) -> str:
        # Runs until its gate file appears or max_seconds pass, recording start and finish.
        log = Path(os.environ[LOG_ENV])
        gate = Path(os.environ[GATES_ENV]) / key
        worker = os.environ.get("DRILL_WORKER", "?")
        _record(log, "start", key, worker)
        deadline = time.monotonic() + max_seconds
        while time.monotonic() < deadline and not gate.exists():
            time.sleep(0.05)
        _record(log, "done", key, worker)
        return key

    return app


def _record(log: Path, event: str, key: str, worker: str) -> None:
    line = f"{event} {key} {worker} {os.getpid()} {time.time():.3f}\n".encode()
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)  # one short O_APPEND write: lines from many processes never mix
    finally:
        os.close(fd)


# The worker process imports this module as `celery_harness:app`.
app = make_app(json.loads(os.environ[CONFIG_ENV])) if CONFIG_ENV in os.environ else None


@dataclass
class Executions:
    starts: Counter[str] = field(default_factory=Counter)
    dones: Counter[str] = field(default_factory=Counter)
    start_workers: dict[str, list[str]] = field(default_factory=dict)
    done_workers: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def read(cls, log: Path) -> Executions:
        found = cls()
        if not log.exists():
            return found
        for line in log.read_text().splitlines():
            event, key, worker, *_ = line.split()
            if event == "start":
                found.starts[key] += 1
                found.start_workers.setdefault(key, []).append(worker)
            else:
                found.dones[key] += 1
                found.done_workers.setdefault(key, []).append(worker)
        return found


def airflow_celery_config(extra_env: dict[str, str], airflow_home: Path) -> dict:
    """Celery config as Airflow 3's celery provider builds it from `extra_env`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env.update(
        {
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # Only needed to build a result backend URL that the drill never uses.
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home}/unused.db",
            **extra_env,
        }
    )
    code = (
        "import json\n"
        "from airflow.configuration import conf\n"
        "from airflow.providers.celery.executors.default_celery import get_default_celery_config\n"
        "print('CONFIG=' + json.dumps(get_default_celery_config(conf), default=str))\n"
    )
    airflow_home.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180
    )
    if out.returncode != 0:
        raise RuntimeError(f"Airflow could not build its Celery config:\n{out.stderr[-3000:]}")
    line = next(x for x in out.stdout.splitlines() if x.startswith("CONFIG="))
    return json.loads(line.removeprefix("CONFIG="))


@dataclass
class SqsBroker:
    endpoint: str  # moto server URL
    queue_url: str

    @property
    def broker_url(self) -> str:
        host_port = self.endpoint.removeprefix("http://")
        return f"sqs://testing:testing@{host_port}/"

    def platform_env(self, concurrency: int, visibility_timeout: int = 43200) -> dict[str, str]:
        """What the chart sets for workers: the platform's settings plus the broker."""
        return {
            **worker_celery_environment(concurrency, visibility_timeout),
            "AIRFLOW__CELERY__BROKER_URL": self.broker_url,
            "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__IS_SECURE": "False",
            "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__REGION": "us-east-1",
            "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__PREDEFINED_QUEUES": json.dumps(
                {QUEUE: {"url": self.queue_url}}
            ),
        }


def create_queue(sqs, visibility_timeout: int) -> str:
    name = f"drill-{uuid.uuid4().hex[:10]}"
    return sqs.create_queue(
        QueueName=name, Attributes={"VisibilityTimeout": str(visibility_timeout)}
    )["QueueUrl"]


def queue_counts(sqs, queue_url: str) -> tuple[int, int]:
    """(visible, in flight) messages."""
    attrs = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(
        attrs["ApproximateNumberOfMessagesNotVisible"]
    )


def worker_ready_mark(name: str) -> str:
    return f"{name}@"


class DrillWorker:
    """One `celery worker` process (prefork pool) running the probe task."""

    def __init__(
        self,
        name: str,
        config: dict,
        concurrency: int,
        workdir: Path,
        log: Path,
        gates: Path,
    ) -> None:
        self.name = name
        self.log_path = workdir / f"worker-{name}-{uuid.uuid4().hex[:6]}.log"
        env = {
            **os.environ,
            CONFIG_ENV: json.dumps(config),
            LOG_ENV: str(log),
            GATES_ENV: str(gates),
            "DRILL_WORKER": name,
            "PYTHONPATH": os.pathsep.join([str(HARNESS_DIR), os.environ.get("PYTHONPATH", "")]),
        }
        argv = [
            sys.executable, "-m", "celery", "-A", "celery_harness:app", "worker",
            "--pool", "prefork", "-O", "fair", "--queues", QUEUE,
            "--concurrency", str(concurrency), "--loglevel", "INFO",
            "--hostname", f"{name}@drill",
        ]  # fmt: skip
        self.process = ManagedProcess(f"celery worker {name}", argv, self.log_path, env=env)

    def start(self, timeout: float = 120) -> DrillWorker:
        self.process.start()
        wait_until(self._ready, timeout, f"celery worker {self.name} ready")
        return self

    def _ready(self) -> bool:
        self.process.check_alive()
        return " ready." in self.log_path.read_text(errors="replace")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def pid(self) -> int:
        return self.process.pid

    def terminate_main(self) -> None:
        """What Kubernetes does on pod deletion: SIGTERM to the container's main process."""
        os.kill(self.pid, signal.SIGTERM)

    def terminate_group(self) -> None:
        """SIGTERM to every process of the worker, the pool children and tasks included."""
        os.killpg(self.pid, signal.SIGTERM)

    def kill(self) -> None:
        """The pod dies at once (grace period over, OOM, node lost)."""
        os.killpg(self.pid, signal.SIGKILL)

    def wait_exit(self, timeout: float) -> int:
        assert self.process.proc is not None
        return self.process.proc.wait(timeout=timeout)

    def describe(self) -> str:
        return f"{self.name} log:\n{tail(self.log_path, 40)}"

    def stop(self) -> None:
        self.process.stop(timeout=20)


def send(producer: Celery, keys: list[str], max_seconds: float) -> None:
    for key in keys:
        producer.send_task(TASK_NAME, args=[key, max_seconds], queue=QUEUE)


def open_gates(gates: Path, keys: list[str]) -> None:
    for key in keys:
        (gates / key).touch()
