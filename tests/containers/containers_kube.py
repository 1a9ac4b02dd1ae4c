"""From the chart's rendering to what `podman kube play` runs.

Everything the pods run comes from `helm template`; this module changes only what README.md's
translation table lists, because podman 4.3 is not a Kubernetes node (no API server, no
Service proxy, no service-account tokens) or lacks a feature. The rows, in code order:
Secrets, Jobs, volumes, containers that need the Kubernetes API, fieldRef, dependent
variables, the AWS endpoint, Vault auth, probes, Service names, init-container bookkeeping.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_platform.local.platform import is_airflow, is_dagsync
from airflow_platform.local.rendering import NAMESPACE, Rendering

CLUSTER_DOMAIN = "cluster.local"
PROBES = ("startupProbe", "livenessProbe", "readinessProbe")
AWS_TEST_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


class TranslationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Host:
    """What the pods reach on the host, through the podman network's gateway."""

    gateway: str
    moto_endpoint: str
    vault_url: str
    vault_token: str


@dataclass
class PodPlan:
    kind: str  # the rendered kind: Deployment, Job or Pod (helm test)
    workload: str  # the rendered object's name
    component: str
    pod: str  # podman's pod name
    ip: str
    manifest: dict[str, Any]  # what is played
    containers: list[str]  # container names inside the pod, in spec order
    init_containers: list[str]
    probes: dict[str, dict[str, dict[str, Any]]]  # container -> probe kind -> rendered probe
    ports: dict[str, dict[str, int]]  # container -> port name -> number
    security: dict[str, dict[str, Any]]  # container -> effective rendered securityContext
    mounts: dict[str, list[str]]  # container -> mount paths
    not_played: list[str] = field(default_factory=list)
    hook: str = ""
    volumes: list[str] = field(default_factory=list)  # podman volumes backing its emptyDirs

    def container_name(self, container: str) -> str:
        return f"{self.pod}-{container}"


def podman_secret(doc: dict[str, Any]) -> str:
    """podman 4.3 reads a secretKeyRef from a podman secret holding {key: base64(value)};
    a Secret played from YAML is stored in a form it cannot read back."""
    data = dict(doc.get("data") or {})
    for key, value in (doc.get("stringData") or {}).items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    return json.dumps(data)


def referenced_secret_keys(rendering: Rendering) -> set[tuple[str, str]]:
    refs: set[tuple[str, str]] = set()
    for doc in rendering.of_kind("Deployment", "Job", "Pod"):
        for c in _all_containers(_pod_spec(doc)):
            for env in c.get("env") or []:
                ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    refs.add((ref["name"], ref["key"]))
        for volume in _pod_spec(doc).get("volumes") or []:
            secret = volume.get("secret")
            for item in (secret or {}).get("items") or []:
                refs.add((secret["secretName"], item["key"]))
    return refs


def _pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    if doc["kind"] == "Pod":
        return doc["spec"]
    return doc["spec"]["template"]["spec"]


def _all_containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]


def _needs_kubernetes_api(container: dict[str, Any], hook: str) -> bool:
    """The local platform's rule: Airflow and dagsync run anywhere; the platform's other
    containers (the worker's pod-deletion-cost agent) talk to the Kubernetes API."""
    if hook:
        return False
    from airflow_platform.local.rendering import Container

    parsed = Container.parse(container)
    return not (is_airflow(parsed) or is_dagsync(parsed))


def _selector_matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def service_aliases(rendering: Rendering, plans: list[PodPlan]) -> list[dict[str, Any]]:
    """hostAliases: every Service name (short and qualified) -> the IP of the pod it selects,
    and every pod's name -> its IP. A Service whose port differs from its target port cannot
    be expressed with names alone: that is an error, not a silent mismatch."""
    by_ip: dict[str, list[str]] = {}
    for svc in rendering.services():
        name = svc["metadata"]["name"]
        selector = (svc.get("spec") or {}).get("selector") or {}
        target = next(
            (
                p
                for p in plans
                if p.kind != "Pod" and _selector_matches(selector, _template_labels(p.manifest))
            ),
            None,
        )
        if target is None:
            continue
        for port in svc["spec"].get("ports") or []:
            wanted = port.get("targetPort", port["port"])
            numbers = {
                n for ports in target.ports.values() for k, n in ports.items() if k == wanted
            }
            if isinstance(wanted, int):
                numbers.add(wanted)
            if port["port"] not in numbers:
                raise TranslationError(
                    f"Service {name} port {port['port']} -> targetPort {wanted}: pods are reached "
                    "by name only here, so the Service port must equal the container port"
                )
        ns = svc["metadata"].get("namespace", NAMESPACE)
        by_ip.setdefault(target.ip, []).extend(
            [name, f"{name}.{ns}", f"{name}.{ns}.svc", f"{name}.{ns}.svc.{CLUSTER_DOMAIN}"]
        )
    for plan in plans:
        by_ip.setdefault(plan.ip, []).append(plan.pod)
    return [{"ip": ip, "hostnames": names} for ip, names in sorted(by_ip.items())]


def _template_labels(manifest: dict[str, Any]) -> dict[str, str]:
    if manifest["kind"] == "Pod":
        return manifest["metadata"].get("labels") or {}
    return manifest["spec"]["template"]["metadata"].get("labels") or {}


def _effective_security(pod_sc: dict[str, Any], c: dict[str, Any]) -> dict[str, Any]:
    merged = {k: v for k, v in pod_sc.items() if k in ("runAsUser", "runAsGroup", "runAsNonRoot")}
    merged.update(c.get("securityContext") or {})
    return merged


def _field_value(path: str, pod: str, ip: str, host: Host, spec: dict[str, Any]) -> str:
    values = {
        "metadata.name": pod,
        "metadata.namespace": NAMESPACE,
        "status.hostIP": host.gateway,
        "status.podIP": ip,
        "spec.nodeName": "podman",
        "spec.serviceAccountName": spec.get("serviceAccountName", "default"),
    }
    if path not in values:
        raise TranslationError(f"fieldRef {path} has no translation (add it to kube.py)")
    return values[path]


# Kubernetes' dependent variables: `$(NAME)` takes the value of an earlier variable of the same
# container, `$$` is a literal `$`, and a reference to an unknown name stays as written.
_DEPENDENT = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def _expand_dependent_env(env: list[dict[str, Any]], secret_dir: Callable[[str], Path]) -> None:
    """What the kubelet does before a container starts and podman 4.3 does not: a value such
    as `db+$(AIRFLOW_PLATFORM_RESULT_BACKEND_URL)` gets the earlier variable's value, Secret
    references included (read from the files the tier wrote for each Secret)."""
    known: dict[str, str] = {}
    for item in env:
        if "value" in item:
            item["value"] = _DEPENDENT.sub(
                lambda m: "$" if m.group(0) == "$$" else known.get(m.group(1), m.group(0)),
                str(item["value"]),
            )
            known[item["name"]] = item["value"]
            continue
        ref = (item.get("valueFrom") or {}).get("secretKeyRef")
        if ref and (path := secret_dir(ref["name"]) / ref["key"]).is_file():
            known[item["name"]] = path.read_text()


def _vault_token_auth(env: list[dict[str, Any]], host: Host) -> None:
    for item in env:
        if item.get("name") != "AIRFLOW__SECRETS__BACKEND_KWARGS" or "value" not in item:
            continue
        kwargs = json.loads(item["value"])
        if kwargs.get("auth_type") in ("kubernetes", "aws_iam"):
            for key in ("kubernetes_role", "kubernetes_jwt_path", "role_id"):
                kwargs.pop(key, None)
            kwargs.update(auth_type="token", token=host.vault_token, url=host.vault_url)
            item["value"] = json.dumps(kwargs)


def translate(
    doc: dict[str, Any],
    ip: str,
    host: Host,
    secret_dir: Callable[[str], Path],
    run_id: str,
) -> PodPlan:
    """One rendered Deployment, Job or Pod -> the manifest podman plays and what to check.

    podman's pods, containers and volumes live in one store per user, beyond this run: their
    names carry the run's id, so a leftover of an interrupted run never collides with this one.
    """
    kind = doc["kind"]
    meta = doc["metadata"]
    played_name = f"{meta['name']}-{run_id}"
    hook = (meta.get("annotations") or {}).get("helm.sh/hook", "")
    labels = meta.get("labels") or {}
    if kind == "Deployment":
        manifest = copy.deepcopy(doc)
        manifest["spec"]["replicas"] = 1
        manifest["metadata"]["name"] = played_name
        template = manifest["spec"]["template"]
        pod_name = f"{played_name}-pod-0"
    else:  # Job (podman 4.3 plays no Jobs: the Job's pod template) or a bare Pod
        source = doc["spec"]["template"] if kind == "Job" else doc
        template = copy.deepcopy({"metadata": source.get("metadata") or {}, "spec": source["spec"]})
        template["metadata"]["name"] = played_name
        template["metadata"].setdefault("labels", dict(labels))
        if kind == "Job":
            template["spec"]["restartPolicy"] = template["spec"].get("restartPolicy") or "Never"
        manifest = {"apiVersion": "v1", "kind": "Pod", **template}
        pod_name = played_name
    spec = template["spec"]
    if kind == "Deployment":
        # podman 4.3 applies the pod's restart policy to init containers too: with Always it
        # reruns them forever. OnFailure restarts a component that dies (SIGKILL, a crash)
        # and lets a finished init container rest.
        spec["restartPolicy"] = "OnFailure"
    annotations = template["metadata"].setdefault("annotations", {})
    # podman 4.3 applies the 63-character label limit to annotation values (the rendered
    # configuration checksums are 64): such annotations are left out.
    for meta_of in (template["metadata"], manifest["metadata"]):
        long = [k for k, v in (meta_of.get("annotations") or {}).items() if len(str(v)) > 63]
        for key in long:
            meta_of["annotations"].pop(key)
    # podman 4.3 removes a finished "once" init container while its exit is still being
    # recorded and fails the pod; "always" keeps it (and reruns it when the pod restarts,
    # as Kubernetes does).
    annotations["io.podman.annotations.init.container.type"] = "always"
    manifest["metadata"].setdefault("annotations", {})[
        "io.podman.annotations.init.container.type"
    ] = "always"

    component = labels.get("app.kubernetes.io/component", meta["name"])
    renamed: dict[str, str] = {}
    for volume in spec.get("volumes") or []:
        if "emptyDir" in volume or "projected" in volume:
            # podman 4.3 backs an emptyDir with a named volume called after the volume alone,
            # which every pod would share: each pod (of this run) gets its own name.
            own = f"{component}-{volume['name']}"[: 62 - len(run_id)]
            renamed[volume["name"]] = volume["name"] = f"{own}-{run_id}"
        if (volume.get("emptyDir") or {}).get("medium") == "Memory":
            # podman 4.3 gives each container its own tmpfs for a Memory emptyDir, so what an
            # init container writes there never reaches the main container: a plain volume.
            volume["emptyDir"] = {}
        if "projected" in volume:  # service-account tokens: there is no Kubernetes API
            volume.pop("projected")
            volume["emptyDir"] = {}
        elif "secret" in volume:  # podman 4.3 mounts no Secret volumes: files on the host
            name = volume.pop("secret")["secretName"]
            volume["hostPath"] = {"path": str(secret_dir(name)), "type": "Directory"}

    for c in _all_containers(spec):
        for mount in c.get("volumeMounts") or []:
            mount["name"] = renamed.get(mount["name"], mount["name"])
    plan = PodPlan(
        kind=kind,
        workload=meta["name"],
        component=component,
        pod=pod_name,
        ip=ip,
        manifest=manifest,
        containers=[],
        init_containers=[],
        probes={},
        ports={},
        security={},
        mounts={},
        hook=hook,
        volumes=sorted(renamed.values()),
    )
    pod_sc = spec.get("securityContext") or {}
    for key in ("initContainers", "containers"):
        kept = []
        for c in spec.get(key) or []:
            if _needs_kubernetes_api(c, hook):
                plan.not_played.append(c["name"])
                continue
            kept.append(c)
            (plan.init_containers if key == "initContainers" else plan.containers).append(c["name"])
            plan.probes[c["name"]] = {p: c.pop(p) for p in PROBES if p in c}
            plan.ports[c["name"]] = {
                p.get("name", str(p["containerPort"])): p["containerPort"]
                for p in c.get("ports") or []
            }
            # podman 4.3 publishes every containerPort on the host's interfaces: the pods
            # are reached on their own address instead, and the ports stay unpublished.
            c.pop("ports", None)
            plan.security[c["name"]] = _effective_security(pod_sc, c)
            plan.mounts[c["name"]] = [m["mountPath"] for m in c.get("volumeMounts") or []]
            env = c.setdefault("env", [])
            for item in env:
                ref = (item.get("valueFrom") or {}).get("fieldRef")
                if ref:
                    item.pop("valueFrom")
                    item["value"] = _field_value(ref["fieldPath"], pod_name, ip, host, spec)
            _expand_dependent_env(env, secret_dir)
            names = {e["name"] for e in env}
            extra = {"AWS_ENDPOINT_URL": host.moto_endpoint, **AWS_TEST_CREDENTIALS}
            env.extend({"name": k, "value": v} for k, v in extra.items() if k not in names)
            _vault_token_auth(env, host)
        if kept:
            spec[key] = kept
        else:
            spec.pop(key, None)
    return plan


def plan_pods(
    rendering: Rendering,
    ips: Callable[[int], str],
    host: Host,
    secret_dir: Callable[[str], Path],
    run_id: str,
) -> list[PodPlan]:
    """Every rendered Job, Deployment and helm-test Pod, in apply order (Jobs first), with
    Service names resolved through hostAliases."""
    docs = [
        *rendering.of_kind("Job"),
        *rendering.of_kind("Deployment"),
        *[
            d
            for d in rendering.of_kind("Pod")
            if (d["metadata"].get("annotations") or {}).get("helm.sh/hook") == "test"
        ],
    ]
    plans = [translate(doc, ips(i), host, secret_dir, run_id) for i, doc in enumerate(docs)]
    aliases = service_aliases(rendering, plans)
    for plan in plans:
        spec = (
            plan.manifest["spec"]
            if plan.manifest["kind"] == "Pod"
            else plan.manifest["spec"]["template"]["spec"]
        )
        spec["hostAliases"] = [*(spec.get("hostAliases") or []), *aliases]
    return plans
