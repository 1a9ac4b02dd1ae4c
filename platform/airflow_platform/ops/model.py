"""What `ops status` reports, whatever the source (a cluster or the local platform), and
how an environment's Status is derived, with MWAA's names where MWAA has one."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# MWAA GetEnvironment Status values this platform reports, plus HIBERNATED and STOPPED.
STATUSES = (
    "CREATING", "CREATE_FAILED", "AVAILABLE", "UPDATING", "UPDATE_FAILED", "ROLLING_BACK",
    "CREATING_SNAPSHOT", "DELETING", "UNHEALTHY", "HIBERNATED", "STOPPED", "UNKNOWN",
)  # fmt: skip


@dataclass
class Component:
    name: str  # scheduler, dag-processor, triggerer, api-server, worker, ...
    ready: int
    desired: int
    detail: str = ""
    # Replicas owned by an autoscaler (HPA, KEDA): a scale-out in progress is not a fault,
    # so one ready replica keeps the component serving (MWAA stays AVAILABLE while scaling).
    autoscaled: bool = False

    @property
    def ok(self) -> bool:
        if self.autoscaled and self.desired > 0:
            return self.ready >= 1
        return self.ready >= self.desired


@dataclass
class Workers:
    current: int
    minimum: int | None
    maximum: int | None
    scaler: str  # keda | hpa | local autoscaler | none
    paused: bool = False


@dataclass
class Heartbeat:
    status: str  # healthy | unhealthy | unknown
    latest: str | None = None
    detail: str = ""


@dataclass
class EnvironmentStatus:
    source: str  # cluster | local
    environment: str
    status: str
    revision: str
    last_update: str
    release_status: str
    components: list[Component] = field(default_factory=list)
    workers: Workers | None = None
    heartbeat: Heartbeat = field(default_factory=lambda: Heartbeat("unknown"))
    migrations: str = "unknown"
    import_errors: int | None = None
    canary: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def derive_status(
    release_status: str,
    revision: int,
    *,
    hibernated: bool,
    snapshot_running: bool,
    migrations_running: bool,
    components: list[Component],
    heartbeat: Heartbeat,
) -> str:
    """The environment's Status from its release and what runs.

    A release being changed wins (CREATING, UPDATING, CREATING_SNAPSHOT, ROLLING_BACK,
    DELETING); a failed one is CREATE_FAILED on its first revision, UPDATE_FAILED after.
    A deployed release is HIBERNATED when scaled down on purpose, UNHEALTHY when a component
    lacks ready replicas (an autoscaled one: has none) or the schedulers' heartbeat is known
    to be stale, else AVAILABLE.
    """
    if release_status == "pending-install":
        return "CREATING"
    if release_status == "pending-upgrade":
        if snapshot_running:
            return "CREATING_SNAPSHOT"
        return "UPDATING"
    if release_status == "pending-rollback":
        return "ROLLING_BACK"
    if release_status == "uninstalling":
        return "DELETING"
    if release_status == "failed":
        return "CREATE_FAILED" if revision <= 1 else "UPDATE_FAILED"
    if release_status not in ("deployed", "superseded", "running"):
        return "UNKNOWN"
    if hibernated:
        return "HIBERNATED"
    if migrations_running:
        return "UPDATING"
    if not components or not all(c.ok for c in components):
        return "UNHEALTHY"
    if heartbeat.status == "unhealthy":
        return "UNHEALTHY"
    return "AVAILABLE"
