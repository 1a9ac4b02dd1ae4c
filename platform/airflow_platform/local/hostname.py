"""Each local worker's own Airflow hostname, as each worker pod has its own.

Airflow records the host that runs a task instance (`task_instance.hostname`, from
`[core] hostname_callable`); the autoscaler reads it to tell busy workers from idle ones.
In a cluster every pod has its own hostname; local processes share the machine's, so the
runner points `hostname_callable` here and gives each worker its own loopback address (the
API server reaches the worker's log server there).
"""

from __future__ import annotations

import os
import socket

POD_HOSTNAME_ENV = "AIRFLOW_PLATFORM_POD_HOSTNAME"
HOSTNAME_CALLABLE = "airflow_platform.local.hostname.pod_hostname"


def pod_hostname() -> str:
    """The name the runner gave this process; the machine's name otherwise."""
    return os.environ.get(POD_HOSTNAME_ENV) or socket.getfqdn()
