"""A worker's log server bound to that worker's own address (locally, its "pod IP").

Airflow's serve_logs binds every interface; each local worker has its own loopback address
and hostname, and the API server fetches a running task's log from
http://<task_instance.hostname>:<[logging] worker_log_server_port>. This serves Airflow's
own log server application there, on the configured port, and nowhere else.

Run as: python -m airflow_platform.local.log_server <address>
"""

from __future__ import annotations

import sys


def serve(address: str) -> None:
    import uvicorn
    from airflow.configuration import conf

    uvicorn.run(
        "airflow.utils.serve_logs.log_server:get_app",
        factory=True,
        host=address,
        port=conf.getint("logging", "worker_log_server_port"),
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    serve(sys.argv[1])
