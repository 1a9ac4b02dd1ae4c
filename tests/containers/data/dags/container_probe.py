"""Runs on a worker container: sees requirements.txt's package, plugins.zip's module and the
variable startup.sh exported."""

from __future__ import annotations

import os
import time

from airflow.sdk import dag, task


@dag(schedule=None, catchup=False, tags=["containers"])
def container_probe():
    @task
    def inspect_environment() -> dict[str, str]:
        import container_probe_plugin
        import cowsay

        return {
            "requirement": cowsay.__name__,
            "plugin": container_probe_plugin.MARK,
            "startup": os.environ["CONTAINER_TIER_STARTUP"],
            "hostname": os.uname().nodename,
        }

    inspect_environment()


@dag(schedule=None, catchup=False, tags=["containers"])
def container_slow():
    @task
    def take_a_while(seconds: int = 25) -> int:
        time.sleep(seconds)
        return seconds

    take_a_while()


container_probe()
container_slow()
