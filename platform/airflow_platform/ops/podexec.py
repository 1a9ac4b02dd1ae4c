"""Run a command in a pod of the release through the Kubernetes exec API, passing its
output and exit code through."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_platform.ops.errors import OpsError
from airflow_platform.ops.kube import COMPONENT_LABEL, Kube


@dataclass
class ExecResult:
    exit_code: int
    stdout: str
    stderr: str


def ready_pod(kube: Kube, component: str = "scheduler") -> Any:
    pods = kube.call(
        kube.core.list_namespaced_pod,
        kube.target.namespace,
        label_selector=f"{kube.target.selector},{COMPONENT_LABEL}={component}",
    ).items
    ready = [
        p
        for p in pods
        if p.status.phase == "Running"
        and not p.metadata.deletion_timestamp
        and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
    ]
    if not ready:
        raise OpsError(
            f"no ready {component} pod of release {kube.target.release!r} in namespace "
            f"{kube.target.namespace!r} ({len(pods)} found): check `airflow-platform ops "
            "status` (a hibernated environment has none: `ops resume`)"
        )
    return sorted(ready, key=lambda p: p.metadata.name)[0]


def run_in_pod(
    kube: Kube,
    pod: Any,
    command: Sequence[str],
    container: str,
    on_stdout: Callable[[str], None] | None = None,
    on_stderr: Callable[[str], None] | None = None,
    timeout: float = 600,
) -> ExecResult:
    from kubernetes.client.exceptions import ApiException
    from kubernetes.stream import stream

    try:
        ws = stream(
            kube.core.connect_get_namespaced_pod_exec,
            pod.metadata.name,
            kube.target.namespace,
            container=container,
            command=list(command),
            stdin=False, stdout=True, stderr=True, tty=False,
            _preload_content=False,
        )  # fmt: skip
    except ApiException as exc:
        raise OpsError(
            f"exec in pod {pod.metadata.name} failed: {exc.status} {exc.reason} "
            f"{(exc.body or '')[:300]}. The identity needs `create` on pods/exec in "
            f"namespace {kube.target.namespace!r}, and the pod's container must be running"
        ) from None
    except Exception as exc:  # websocket handshake errors carry the API status in text
        raise OpsError(f"exec in pod {pod.metadata.name} failed: {exc}") from None
    out: list[str] = []
    err: list[str] = []
    deadline = time.monotonic() + timeout
    while ws.is_open():
        if time.monotonic() > deadline:
            ws.close()
            raise OpsError(f"`{' '.join(command)}` in {pod.metadata.name} ran over {timeout:.0f}s")
        ws.update(timeout=1)
        if ws.peek_stdout():
            chunk = ws.read_stdout()
            out.append(chunk)
            if on_stdout:
                on_stdout(chunk)
        if ws.peek_stderr():
            chunk = ws.read_stderr()
            err.append(chunk)
            if on_stderr:
                on_stderr(chunk)
    code = ws.returncode
    ws.close()
    return ExecResult(int(code if code is not None else 1), "".join(out), "".join(err))


def passthrough(kube: Kube, argv: Sequence[str]) -> int:
    """`airflow <argv>` in a ready scheduler pod, streamed to this terminal."""
    pod = ready_pod(kube)
    result = run_in_pod(
        kube,
        pod,
        ["airflow", *argv],
        container="scheduler",
        on_stdout=lambda s: (sys.stdout.write(s), sys.stdout.flush()),
        on_stderr=lambda s: (sys.stderr.write(s), sys.stderr.flush()),
    )
    return result.exit_code


def probe_in_pod(kube: Kube) -> dict[str, Any]:
    pod = ready_pod(kube)
    result = run_in_pod(kube, pod, ["airflow-platform", "ops", "probe"], container="scheduler")
    if result.exit_code != 0:
        raise OpsError(f"ops probe in {pod.metadata.name} exited {result.exit_code}: "
                       f"{result.stderr.strip()[-300:]}")  # fmt: skip
    return json.loads(result.stdout.strip().splitlines()[-1])
