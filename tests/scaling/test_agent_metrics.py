"""The deletion-cost agent's Prometheus metrics: what each step adds (decisions, patches,
errors by stage, running tasks, cost), scraped over HTTP from the server the agent starts,
and the `scaling worker-agent` command serving them while it runs against real PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from airflow_platform.procs import free_port, wait_until
from airflow_platform.scaling.deletion_cost import AgentMetrics, DeletionCostAgent

CLI = str(Path(sys.executable).parent / "airflow-platform")


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics by (name, sorted labels)."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_each_step_shows_in_the_served_metrics() -> None:
    counts: list[int | Exception] = [2, RuntimeError("db down"), 2, 2, 0]
    writes = [RuntimeError("apiserver unavailable")]  # the first write fails, later ones pass

    def count() -> int:
        value = counts.pop(0)
        if isinstance(value, Exception):
            raise value
        return value

    def write(_: int) -> None:
        if writes:
            raise writes.pop()

    metrics = AgentMetrics()
    port = free_port()
    server = metrics.serve("127.0.0.1", port)
    try:
        before = scrape(port)
        assert before[("worker_agent_errors_total", (("stage", "count"),))] == 0
        assert before[("worker_agent_errors_total", (("stage", "write"),))] == 0
        assert before[("worker_agent_deletion_cost", ())] == -1

        agent = DeletionCostAgent(count, write)
        for _ in range(5):  # write fails, count fails, write 2, unchanged, write 0
            metrics.observe(agent.step())
        after = scrape(port)
    finally:
        server.shutdown()
    assert after[("worker_agent_steps_total", ())] == 5
    assert after[("worker_agent_patches_total", ())] == 2
    assert after[("worker_agent_errors_total", (("stage", "count"),))] == 1
    assert after[("worker_agent_errors_total", (("stage", "write"),))] == 1
    assert after[("worker_agent_running_tasks", ())] == 0
    assert after[("worker_agent_deletion_cost", ())] == 0
    assert after[("worker_agent_last_success_timestamp_seconds", ())] > 0


@pytest.mark.integration
def test_the_worker_agent_serves_metrics_while_the_api_refuses(
    airflow_db: str, tmp_path: Path
) -> None:
    """Real PostgreSQL counts the tasks; the Kubernetes API is a closed port, so every write
    fails: the errors counter is how an operator sees it."""
    kubeconfig = tmp_path / "kubeconfig"
    closed = free_port()
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{closed}"}}],
        "users": [{"name": "u", "user": {"token": "x"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
    }))  # fmt: skip
    port = free_port()
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "AIRFLOW_PLATFORM_LOG_FORMAT": "text"}
    agent = subprocess.Popen(
        [CLI, "scaling", "worker-agent", "--database-url", airflow_db, "--pod-name", "worker-0",
         "--namespace", "airflow", "--hostname", "worker-0.example", "--interval", "0.2",
         "--metrics-port", str(port), "--metrics-host", "127.0.0.1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(agent.stdout or []), daemon=True)
    reader.start()
    try:

        def failed_writes() -> bool:
            try:
                found = scrape(port)
            except httpx.TransportError:
                return False
            return found[("worker_agent_errors_total", (("stage", "write"),))] >= 2

        wait_until(failed_writes, 120, "two failed writes in /metrics", interval=0.2)
        found = scrape(port)
        assert found[("worker_agent_steps_total", ())] >= 2
        assert found[("worker_agent_patches_total", ())] == 0
        assert found[("worker_agent_errors_total", (("stage", "count"),))] == 0
        assert found[("worker_agent_running_tasks", ())] == 0  # counted in the real database
        assert found[("worker_agent_deletion_cost", ())] == -1  # nothing written yet
    finally:
        agent.send_signal(signal.SIGTERM)
        code = agent.wait(timeout=60)
        reader.join(timeout=10)
    assert code == 0, "".join(output)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
