"""The Airflow settings that make worker scale-in drain-safe on Celery + SQS.

Celery on SQS has no remote control, so a drain cannot be requested over the broker. It
needs none: a SIGTERM to the Celery main process is a warm shutdown — the consumer is
cancelled at once, running tasks finish, then the process exits. The worker imports
`worker_shutdown` (Celery `imports`, in the pinned extra config) so that the SQS long poll
open at the cancel returns, and what it got is visible again, before the exit. What must
hold around it:

- acks late: a message is deleted from SQS only when its task has finished, so a worker
  that dies (SIGKILL, OOM, node loss) leaves it to come back after the visibility timeout.
- prefetch multiplier 1: a worker reserves at most `concurrency` messages, i.e. only what
  it can start now; nothing waits in a draining worker's buffer.
- no soft shutdown timeout: Celery's soft shutdown would cut running tasks short; the pod's
  terminationGracePeriodSeconds is the only limit (GRACEFUL) or the deliberate one (FORCED).
- SIGTERM must reach only the Celery main process (the container's PID 1 in Kubernetes).
  Signalling the whole process group also stops the pool children and the task processes.

With predefined queues (the platform's case), SQS applies the *queue's* VisibilityTimeout
attribute: kombu does not pass the transport option on ReceiveMessage. The transport
option only silences Airflow's warning and must equal the queue attribute, which the
infrastructure that creates the queue sets.
"""

from __future__ import annotations

import json
from enum import StrEnum

SQS_MAX_VISIBILITY_TIMEOUT = 43200  # 12 h, also MWAA's graceful replacement limit


class ReplacementStrategy(StrEnum):
    GRACEFUL = "GRACEFUL"  # let running tasks finish, up to graceful_timeout_seconds
    FORCED = "FORCED"  # replace at once; tasks cut short come back by visibility timeout


FORCED_GRACE_SECONDS = 30

WORKER_SHUTDOWN_MODULE = "airflow_platform.scaling.worker_shutdown"
# Celery `imports`: modules a worker imports at start, before it builds its consumer.
EXTRA_CELERY_CONFIG = json.dumps(
    {"worker_soft_shutdown_timeout": 0, "imports": [WORKER_SHUTDOWN_MODULE]}
)
# Time after a drain for the task's last log upload and the Celery exit.
GRACEFUL_MARGIN_SECONDS = 60


def worker_celery_environment(tasks_per_worker: int, visibility_timeout: int) -> dict[str, str]:
    """Environment variables every worker (and the scheduler's Celery client) must get."""
    if tasks_per_worker < 1:
        raise ValueError(f"tasks_per_worker must be >= 1, got {tasks_per_worker}")
    if not 0 < visibility_timeout <= SQS_MAX_VISIBILITY_TIMEOUT:
        raise ValueError(
            f"celery.visibilityTimeout must be between 1 and {SQS_MAX_VISIBILITY_TIMEOUT} "
            f"seconds (SQS's limit), got {visibility_timeout}"
        )
    return {
        "AIRFLOW__CELERY__TASK_ACKS_LATE": "True",
        "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(tasks_per_worker),
        "AIRFLOW__CELERY__WORKER_ENABLE_REMOTE_CONTROL": "False",
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": str(visibility_timeout),
        # Pinned rather than inherited: a non-zero value would cut draining tasks short, and
        # the worker must import the module that closes its SQS poll on shutdown.
        "AIRFLOW__CELERY__EXTRA_CELERY_CONFIG": EXTRA_CELERY_CONFIG,
    }


def termination_grace_seconds(
    strategy: ReplacementStrategy | str, graceful_timeout_seconds: int, visibility_timeout: int
) -> int:
    """terminationGracePeriodSeconds for worker pods under `strategy`."""
    strategy = ReplacementStrategy(strategy)
    if strategy is ReplacementStrategy.FORCED:
        return FORCED_GRACE_SECONDS
    if not 0 < graceful_timeout_seconds <= SQS_MAX_VISIBILITY_TIMEOUT:
        raise ValueError(
            f"workers.gracefulTimeoutSeconds must be between 1 and "
            f"{SQS_MAX_VISIBILITY_TIMEOUT}, got {graceful_timeout_seconds}"
        )
    if graceful_timeout_seconds > visibility_timeout:
        # A task still draining past the visibility timeout is handed to a second worker.
        raise ValueError(
            f"workers.gracefulTimeoutSeconds ({graceful_timeout_seconds}) exceeds "
            f"celery.visibilityTimeout ({visibility_timeout}); lower the first or raise the "
            "second (and the SQS queue's VisibilityTimeout with it)"
        )
    return graceful_timeout_seconds + GRACEFUL_MARGIN_SECONDS
