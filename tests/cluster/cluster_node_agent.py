"""A node agent standing in for the kubelet, which cannot run here (no container runtime).

It registers nodes (two zones), renews their leases and Ready condition, and drives the pods
the real kube-scheduler binds to them, doing what a kubelet does that the API can observe:

- before "starting" a pod it checks what a kubelet checks: every non-optional Secret and
  ConfigMap the pod mounts or reads environment from exists and has the referenced keys;
  otherwise the pod stays Pending with CreateContainerConfigError, like on a real node;
- long-running pods (restartPolicy Always) become Running and Ready with a pod IP, so the
  ReplicaSet, Deployment and Endpoints controllers see real readiness (probes are not run:
  there is no process to probe);
- run-to-completion pods (Jobs) finish only through an evaluator a test declares
  (DeclaredExit, with its reason in the pod status). A pod no evaluator decides is marked
  Failed ("NotEvaluated"), never Succeeded: the agent does not invent success. The Jobs and
  the `helm test` pod really run in the containers tier (tests/containers);
- a pod with a deletionTimestamp is finished at once (delete with grace 0), as a kubelet
  does once its containers have stopped;
- exec requests reach cluster_kubelet_exec, which runs the exec'd container with podman.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

log = logging.getLogger("cluster.node-agent")

LEASE_NAMESPACE = "kube-node-lease"
LEASE_SECONDS = 40
ZONE_LABEL = "topology.kubernetes.io/zone"
HOSTNAME_LABEL = "kubernetes.io/hostname"


@dataclass(frozen=True)
class NodeSpec:
    name: str
    zone: str
    index: int  # pod IPs come from 10.244.<index>.0/24, the node's InternalIP is 10.0.0.<index>
    cpu: str = "16"
    memory: str = "64Gi"

    @property
    def ip(self) -> str:
        return f"10.0.0.{self.index}"


def default_nodes(region: str = "us-east-1") -> list[NodeSpec]:
    """Four nodes, two per zone: enough for zone and host spreading to be visible."""
    zones = (f"{region}a", f"{region}b")
    return [
        NodeSpec(f"node-{zone[-1]}{n}", zone, index=2 * z + n)
        for z, zone in enumerate(zones)
        for n in (1, 2)
    ]


@dataclass(frozen=True)
class Outcome:
    succeeded: bool
    reason: str
    message: str


# An evaluator decides a run-to-completion pod, or returns None when it cannot.
Evaluator = Callable[[client.V1Pod], "Outcome | None"]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class DeclaredExit:
    """The test declares the exit status of pods it selects by labels, with a reason.

    Used where the container's work is exercised elsewhere against the real service (the
    migrations Job runs `airflow db migrate` against real PostgreSQL in the e2e tier); the
    declaration is visible in the pod's status message."""

    def __init__(self, labels: dict[str, str], why: str, exit_code: int = 0) -> None:
        self.labels = labels
        self.why = why
        self.exit_code = exit_code

    def __call__(self, pod: client.V1Pod) -> Outcome | None:
        pod_labels = pod.metadata.labels or {}
        if any(pod_labels.get(k) != v for k, v in self.labels.items()):
            return None
        return Outcome(
            self.exit_code == 0,
            "Completed" if self.exit_code == 0 else "Error",
            f"exit {self.exit_code} declared by the test: {self.why}",
        )


def missing_references(core: client.CoreV1Api, pod: client.V1Pod) -> list[str]:
    """What a kubelet would refuse to start this pod for: absent Secrets/ConfigMaps/keys."""
    namespace = pod.metadata.namespace
    cache: dict[tuple[str, str], dict[str, str] | None] = {}

    def data(kind: str, name: str) -> dict[str, str] | None:
        if (kind, name) not in cache:
            try:
                obj = (
                    core.read_namespaced_secret(name, namespace)
                    if kind == "Secret"
                    else core.read_namespaced_config_map(name, namespace)
                )
            except ApiException as exc:
                if exc.status != 404:
                    raise
                cache[(kind, name)] = None
            else:
                keys = dict(obj.data or {})
                if kind == "ConfigMap":
                    keys.update(obj.binary_data or {})
                cache[(kind, name)] = keys
        return cache[(kind, name)]

    problems: list[str] = []

    def need(kind: str, name: str, key: str | None, optional: bool | None, where: str) -> None:
        if optional:
            return
        found = data(kind, name)
        if found is None:
            problems.append(f"{where}: {kind} {name!r} not found")
        elif key is not None and key not in found:
            problems.append(f"{where}: {kind} {name!r} has no key {key!r}")

    for volume in pod.spec.volumes or []:
        if volume.secret:
            need(
                "Secret",
                volume.secret.secret_name,
                None,
                volume.secret.optional,
                f"volume {volume.name}",
            )
        if volume.config_map:
            need(
                "ConfigMap",
                volume.config_map.name,
                None,
                volume.config_map.optional,
                f"volume {volume.name}",
            )
        for source in (volume.projected.sources or []) if volume.projected else []:
            if source.secret:
                need(
                    "Secret",
                    source.secret.name,
                    None,
                    source.secret.optional,
                    f"volume {volume.name}",
                )
            if source.config_map:
                need(
                    "ConfigMap",
                    source.config_map.name,
                    None,
                    source.config_map.optional,
                    f"volume {volume.name}",
                )
    for container in [*(pod.spec.init_containers or []), *pod.spec.containers]:
        where = f"container {container.name}"
        for env in container.env or []:
            ref = env.value_from
            if ref and ref.secret_key_ref:
                need(
                    "Secret",
                    ref.secret_key_ref.name,
                    ref.secret_key_ref.key,
                    ref.secret_key_ref.optional,
                    f"{where} env {env.name}",
                )
            if ref and ref.config_map_key_ref:
                need(
                    "ConfigMap",
                    ref.config_map_key_ref.name,
                    ref.config_map_key_ref.key,
                    ref.config_map_key_ref.optional,
                    f"{where} env {env.name}",
                )
        for source in container.env_from or []:
            if source.secret_ref:
                need("Secret", source.secret_ref.name, None, source.secret_ref.optional, where)
            if source.config_map_ref:
                need(
                    "ConfigMap",
                    source.config_map_ref.name,
                    None,
                    source.config_map_ref.optional,
                    where,
                )
    return problems


@dataclass
class NodeAgent:
    api: client.ApiClient
    nodes: list[NodeSpec] = field(default_factory=default_nodes)
    evaluators: list[Evaluator] = field(default_factory=list)
    heartbeat_seconds: float = 10.0
    # Where the API server reaches the nodes' kubelet endpoint (cluster_kubelet_exec): one
    # server on 127.0.0.1 for every node, named by an InternalDNS address and this port.
    kubelet_port: int | None = None

    def __post_init__(self) -> None:
        self.core = client.CoreV1Api(self.api)
        self.coordination = client.CoordinationV1Api(self.api)
        self._by_name = {n.name: n for n in self.nodes}
        self._next_ip: dict[str, int] = {n.name: 1 for n in self.nodes}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.errors: list[str] = []  # unexpected API errors, for test diagnostics

    # -- nodes -------------------------------------------------------------------------
    def _conditions(self) -> list[dict]:
        now = _stamp(_now())
        ok = {"status": "False", "lastHeartbeatTime": now, "lastTransitionTime": now}
        return [
            {"type": "MemoryPressure", "reason": "KubeletHasSufficientMemory", **ok},
            {"type": "DiskPressure", "reason": "KubeletHasNoDiskPressure", **ok},
            {"type": "PIDPressure", "reason": "KubeletHasSufficientPID", **ok},
            {
                "type": "Ready",
                "status": "True",
                "reason": "KubeletReady",
                "message": "node agent is posting ready status",
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            },
        ]

    def _register(self, node: NodeSpec) -> None:
        capacity = {
            "cpu": node.cpu,
            "memory": node.memory,
            "pods": "110",
            "ephemeral-storage": "100Gi",
        }
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": node.name,
                "labels": {
                    HOSTNAME_LABEL: node.name,
                    ZONE_LABEL: node.zone,
                    "topology.kubernetes.io/region": node.zone[:-1],
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "node.kubernetes.io/instance-type": "m6i.4xlarge",
                },
            },
            "spec": {"podCIDR": f"10.244.{node.index}.0/24"},
            "status": {
                "capacity": capacity,
                "allocatable": capacity,
                "conditions": self._conditions(),
                "addresses": [
                    {"type": "InternalIP", "address": node.ip},
                    {"type": "Hostname", "address": node.name},
                    *(
                        [{"type": "InternalDNS", "address": "127.0.0.1"}]
                        if self.kubelet_port
                        else []
                    ),
                ],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": self.kubelet_port or 10250}},
                "nodeInfo": {
                    "kubeletVersion": "v1.20.2",
                    "kubeProxyVersion": "v1.20.2",
                    "containerRuntimeVersion": "none://0",
                    "operatingSystem": "linux",
                    "architecture": "amd64",
                    "osImage": "node agent",
                    "kernelVersion": "",
                    "machineID": node.name,
                    "systemUUID": node.name,
                    "bootID": node.name,
                },
            },
        }
        try:
            self.core.create_node(body)
        except ApiException as exc:
            if exc.status != 409:
                raise
        self._heartbeat(node, renew_status=True)

    def _heartbeat(self, node: NodeSpec, renew_status: bool) -> None:
        now = _now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": node.name, "namespace": LEASE_NAMESPACE},
            "spec": {
                "holderIdentity": node.name,
                "leaseDurationSeconds": LEASE_SECONDS,
                "renewTime": now,
            },
        }
        try:
            self.coordination.patch_namespaced_lease(
                node.name, LEASE_NAMESPACE, {"spec": lease["spec"]}
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            self.coordination.create_namespaced_lease(LEASE_NAMESPACE, lease)
        if renew_status:
            self.core.patch_node_status(
                node.name,
                {"status": {"conditions": self._conditions()}},
            )

    def _heartbeat_loop(self) -> None:
        beats = 0
        while not self._stop.wait(self.heartbeat_seconds):
            beats += 1
            for node in self.nodes:
                try:
                    self._heartbeat(node, renew_status=beats % 3 == 0)
                except Exception as exc:  # keep beating; the next round may succeed
                    self._record(f"heartbeat {node.name}: {exc!r}")

    # -- pods --------------------------------------------------------------------------
    def _record(self, message: str) -> None:
        log.warning(message)
        self.errors.append(message)

    def _pod_ip(self, node: NodeSpec) -> str:
        n = self._next_ip[node.name]
        self._next_ip[node.name] = n + 1
        return f"10.244.{node.index}.{n}"

    def _patch_status(self, pod: client.V1Pod, status: dict) -> None:
        self.core.patch_namespaced_pod_status(
            pod.metadata.name,
            pod.metadata.namespace,
            {"metadata": {"uid": pod.metadata.uid}, "status": status},
            _content_type="application/strategic-merge-patch+json",
        )

    @staticmethod
    def _container_id(pod: client.V1Pod, name: str) -> str:
        return f"none://{pod.metadata.uid}-{name}"

    def _handle(self, pod: client.V1Pod) -> None:
        node = self._by_name.get(pod.spec.node_name or "")
        if node is None:
            return
        if pod.metadata.deletion_timestamp is not None:
            # Containers "stop" at once: finish the deletion like a kubelet would.
            try:
                self.core.delete_namespaced_pod(
                    pod.metadata.name,
                    pod.metadata.namespace,
                    body=client.V1DeleteOptions(
                        grace_period_seconds=0,
                        preconditions=client.V1Preconditions(uid=pod.metadata.uid),
                    ),
                )
            except ApiException as exc:
                if exc.status not in (404, 409):
                    raise
            return
        phase = pod.status.phase if pod.status else None
        if phase in ("Succeeded", "Failed") or (phase == "Running" and pod.status.pod_ip):
            return

        now = _stamp(_now())
        problems = missing_references(self.core, pod)
        if problems:
            reason = "CreateContainerConfigError"
            message = "; ".join(problems)
            current = [
                s.state.waiting.message
                for s in (pod.status.container_statuses or [])
                if s.state and s.state.waiting
            ]
            if message in current:
                return  # already reported; re-checked on the next resync
            self._patch_status(
                pod,
                {
                    "phase": "Pending",
                    "hostIP": node.ip,
                    "startTime": now,
                    "conditions": [
                        {
                            "type": "Initialized",
                            "status": "False",
                            "reason": reason,
                            "lastTransitionTime": now,
                        },
                        {
                            "type": "Ready",
                            "status": "False",
                            "reason": reason,
                            "lastTransitionTime": now,
                        },
                        {
                            "type": "ContainersReady",
                            "status": "False",
                            "reason": reason,
                            "lastTransitionTime": now,
                        },
                    ],
                    "containerStatuses": [
                        {
                            "name": c.name,
                            "image": c.image,
                            "imageID": "",
                            "ready": False,
                            "restartCount": 0,
                            "state": {"waiting": {"reason": reason, "message": message}},
                        }
                        for c in pod.spec.containers
                    ],
                },
            )
            return

        init_statuses = [
            {
                "name": c.name,
                "image": c.image,
                "imageID": c.image,
                "containerID": self._container_id(pod, c.name),
                "ready": True,
                "restartCount": 0,
                "state": {
                    "terminated": {
                        "exitCode": 0,
                        "reason": "Completed",
                        "startedAt": now,
                        "finishedAt": now,
                    }
                },
            }
            for c in pod.spec.init_containers or []
        ]
        ip = self._pod_ip(node)
        base = {
            "hostIP": node.ip,
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": now,
            "initContainerStatuses": init_statuses,
        }
        if (pod.spec.restart_policy or "Always") == "Always":
            self._patch_status(
                pod,
                {
                    **base,
                    "phase": "Running",
                    "conditions": [
                        {"type": t, "status": "True", "lastTransitionTime": now}
                        for t in ("Initialized", "ContainersReady", "Ready")
                    ],
                    "containerStatuses": [
                        {
                            "name": c.name,
                            "image": c.image,
                            "imageID": c.image,
                            "containerID": self._container_id(pod, c.name),
                            "ready": True,
                            "started": True,
                            "restartCount": 0,
                            "state": {"running": {"startedAt": now}},
                        }
                        for c in pod.spec.containers
                    ],
                },
            )
            return

        outcome = next(
            (o for o in (evaluate(pod) for evaluate in self.evaluators) if o is not None),
            None,
        ) or Outcome(
            False,
            "NotEvaluated",
            "the node agent has no container runtime and no evaluator for this pod",
        )
        exit_code = 0 if outcome.succeeded else 1
        self._patch_status(
            pod,
            {
                **base,
                "phase": "Succeeded" if outcome.succeeded else "Failed",
                "reason": None if outcome.succeeded else outcome.reason,
                "message": outcome.message,
                "conditions": [
                    {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                    {
                        "type": "ContainersReady",
                        "status": "False",
                        "reason": "PodCompleted",
                        "lastTransitionTime": now,
                    },
                    {
                        "type": "Ready",
                        "status": "False",
                        "reason": "PodCompleted",
                        "lastTransitionTime": now,
                    },
                ],
                "containerStatuses": [
                    {
                        "name": c.name,
                        "image": c.image,
                        "imageID": c.image,
                        "containerID": self._container_id(pod, c.name),
                        "ready": False,
                        "started": False,
                        "restartCount": 0,
                        "state": {
                            "terminated": {
                                "exitCode": exit_code,
                                "reason": outcome.reason,
                                "message": outcome.message,
                                "startedAt": now,
                                "finishedAt": now,
                            }
                        },
                    }
                    for c in pod.spec.containers
                ],
            },
        )

    def _handle_safely(self, pods: Iterable[client.V1Pod]) -> None:
        for pod in pods:
            try:
                self._handle(pod)
            except ApiException as exc:
                if exc.status in (404, 409):  # gone or changed meanwhile: next event/resync
                    continue
                self._record(f"pod {pod.metadata.namespace}/{pod.metadata.name}: {exc!r}")
            except Exception as exc:
                self._record(f"pod {pod.metadata.namespace}/{pod.metadata.name}: {exc!r}")

    def _pod_loop(self) -> None:
        while not self._stop.is_set():
            try:
                listing = self.core.list_pod_for_all_namespaces()
                self._handle_safely(listing.items)
                # Watch until the server closes the stream, then resync from a fresh list:
                # pods waiting for a Secret are re-checked on every resync.
                stream = watch.Watch()
                for event in stream.stream(
                    self.core.list_pod_for_all_namespaces,
                    resource_version=listing.metadata.resource_version,
                    timeout_seconds=5,
                ):
                    if self._stop.is_set():
                        stream.stop()
                        break
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._handle_safely([event["object"]])
            except Exception as exc:
                if not self._stop.is_set():
                    self._record(f"pod loop: {exc!r}")
                    self._stop.wait(1)

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> NodeAgent:
        for node in self.nodes:
            self._register(node)
        for target, name in ((self._heartbeat_loop, "heartbeat"), (self._pod_loop, "pods")):
            thread = threading.Thread(target=target, name=f"node-agent-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)
