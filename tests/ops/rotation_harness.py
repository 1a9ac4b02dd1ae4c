"""Real Airflow 3.3.2 components for the signing-key rotation test, configured the way the
chart configures them with `secrets.jwtSigning` (private key and JWKS as files, the task
execution API behind a Service), on PostgreSQL and Celery over a moto SQS queue.

`ServiceProxy` stands for the execution API's Kubernetes Service during a rolling update:
each connection goes to the backend current when it was opened, and the old backend is
stopped only after the new one answers, as a Deployment with maxUnavailable 0 does. It also
reads the kid of every bearer token the task sends, so the test sees which key signed what."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from airflow_platform.procs import ManagedProcess, free_port, tail, wait_until

AIRFLOW = str(Path(sys.executable).parent / "airflow")
# uvicorn's access log line, as Airflow 3.3.2 writes it.
ACCESS = re.compile(
    r"method=(\w+) path=/execution/task-instances/(\S+) query=\S* status_code=(\d+)"
)
BEARER = re.compile(rb"(?i)\r\nauthorization: bearer ([\w-]+)\.[\w-]+\.[\w-]+\r\n")

DAG = """
import time
from pathlib import Path

import pendulum
from airflow.sdk import dag, task

GATE = Path({gate!r})


@dag(dag_id="rotation_probe", schedule=None, catchup=False,
     start_date=pendulum.datetime(2026, 1, 1, tz="UTC"))
def rotation_probe():
    @task
    def hold() -> str:
        # Runs until the test opens the gate: across the whole rotation.
        while not GATE.exists():
            time.sleep(0.2)
        return "released"

    hold()


rotation_probe()
"""


def kid_of(header_b64: bytes) -> str:
    padded = header_b64 + b"=" * (-len(header_b64) % 4)
    return str(json.loads(base64.urlsafe_b64decode(padded)).get("kid", ""))


@dataclass
class ServiceProxy:
    """A TCP forwarder on 127.0.0.1 to the current backend port."""

    backend: int
    port: int = field(default_factory=free_port)
    seen: list[tuple[float, str]] = field(default_factory=list)  # (time, kid) per request
    _loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)

    def start(self) -> ServiceProxy:
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            server = self._loop.run_until_complete(
                asyncio.start_server(self._client, "127.0.0.1", self.port)
            )
            self._server = server
            ready.set()
            self._loop.run_forever()

        threading.Thread(target=run, name="service-proxy", daemon=True).start()
        ready.wait(10)
        return self

    def switch(self, backend: int) -> None:
        self.backend = backend

    def kids_since(self, moment: float) -> set[str]:
        return {kid for at, kid in list(self.seen) if at >= moment}

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.backend)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            self._pipe(reader, up_writer, record=True), self._pipe(up_reader, writer)
        )

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, record: bool = False
    ) -> None:
        pending = b""
        try:
            while data := await reader.read(65536):
                if record:
                    pending = (pending + data)[-16384:]
                    for match in BEARER.finditer(pending):
                        self.seen.append((time.time(), kid_of(match.group(1))))
                    # Keep only what follows the last complete header line.
                    pending = pending[pending.rfind(b"\r\n") :]
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def stop(self) -> None:
        def close() -> None:
            self._server.close()
            self._loop.stop()

        self._loop.call_soon_threadsafe(close)


@dataclass
class Cluster:
    """The components' processes; `env(...)` is what the chart renders for each of them."""

    root: Path
    base: dict[str, str]
    processes: dict[str, ManagedProcess] = field(default_factory=dict)
    count: int = 0

    def env(self, key: Path | None = None, jwks: Path | None = None) -> dict[str, str]:
        env = dict(self.base)
        if key:  # the components that sign (scheduler, api-server, execution-api)
            env["AIRFLOW__API_AUTH__JWT_PRIVATE_KEY_PATH"] = str(key)
        if jwks:  # the components that verify (api-server, execution-api)
            env["AIRFLOW__API_AUTH__TRUSTED_JWKS_URL"] = str(jwks)
        return env

    def start(self, name: str, args: list[str], env: dict[str, str]) -> ManagedProcess:
        self.count += 1
        log = self.root / "logs" / f"{name}-{self.count}.log"
        process = ManagedProcess(name, [AIRFLOW, *args], log, env=env).start()
        self.processes[f"{name}-{self.count}"] = process
        return process

    def execution_api(self, key: Path, jwks: Path) -> tuple[ManagedProcess, int]:
        """An execution-api pod: `api-server --apps execution`, ready when /execution/health
        answers."""
        port = free_port()
        env = {**self.env(key, jwks), "AIRFLOW__API__WORKERS": "1"}
        args = ["api-server", "--apps", "execution", "--host", "127.0.0.1", "--port", str(port)]
        process = self.start("execution-api", args, env)

        def healthy() -> bool:
            process.check_alive()
            url = f"http://127.0.0.1:{port}/execution/health"
            with urllib.request.urlopen(url, timeout=5) as response:
                return bool(response.status == 200)

        wait_until(healthy, 300, "the execution API's /execution/health")
        return process, port

    def execution_api_calls(self, ti_id: str) -> dict[str, list[tuple[str, int]]]:
        """Per execution-api process, the (route, status) of every call about the task
        instance, from its access log."""
        calls: dict[str, list[tuple[str, int]]] = {}
        for name, process in self.processes.items():
            if name.startswith("execution-api"):
                text = process.log_path.read_text(errors="replace")
                calls[name] = [
                    (f"{m.group(1)} {m.group(2)}", int(m.group(3)))
                    for m in ACCESS.finditer(text)
                    if m.group(2).split("/")[0] == ti_id
                ]
        return calls

    def logs(self) -> str:
        return "\n".join(f"--- {n}\n{tail(p.log_path, 25)}" for n, p in self.processes.items())

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.stop(timeout=30)


def airflow_base_env(home: Path, url: str, broker_env: dict[str, str]) -> dict[str, str]:
    """What every component shares (the chart's environment, minus the signing keys)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env.update(broker_env)
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__EXECUTOR="CeleryExecutor",
        AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=url,
        AIRFLOW__CELERY__RESULT_BACKEND="db+" + url,
        AIRFLOW__CELERY__OPERATION_TIMEOUT="30",
        AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL="1",
        AIRFLOW__API__SECRET_KEY="s" * 32,
        AIRFLOW__CORE__FERNET_KEY=base64.urlsafe_b64encode(b"f" * 32).decode(),
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
    )
    return env
