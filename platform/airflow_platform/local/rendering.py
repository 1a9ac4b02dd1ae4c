"""Render the chart with `helm template` and read the workloads out of it.

This is where the local platform gets every component's command, args, environment,
volumes, ports and probes: the same manifests a cluster would run.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from airflow_platform.tools import ToolNotFoundError, find_tool

RELEASE = "airflow"
NAMESPACE = "airflow"
COMPONENT_LABEL = "app.kubernetes.io/component"


class RenderError(RuntimeError):
    pass


def find_helm(repo: Path) -> str:
    try:
        return find_tool("helm", repo)
    except ToolNotFoundError as exc:
        raise RenderError(str(exc)) from exc


def helm_template(
    helm: str,
    chart: Path,
    values_files: Iterable[Path],
    set_string: dict[str, str],
) -> str:
    if not (chart / "Chart.yaml").exists():
        raise RenderError(f"no Helm chart at {chart} (Chart.yaml missing)")
    argv = [helm, "template", RELEASE, str(chart), "--namespace", NAMESPACE]
    for path in values_files:
        argv += ["-f", str(path)]
    for key, value in sorted(set_string.items()):
        argv += ["--set-string", f"{key}={value}"]
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise RenderError(f"`helm template` failed:\n{result.stderr.strip()}")
    return result.stdout


def chart_values(helm: str, chart: Path, values_files: Iterable[Path]) -> dict[str, Any]:
    """The chart's values as helm has them (`helm show values`), the files merged over them."""
    from airflow_platform.merge import deep_merge

    shown = subprocess.run([helm, "show", "values", str(chart)], capture_output=True, text=True)
    if shown.returncode != 0:
        raise RenderError(f"`helm show values` failed:\n{shown.stderr.strip()}")
    merged: dict[str, Any] = yaml.safe_load(shown.stdout) or {}
    for path in values_files:
        merged = deep_merge(merged, yaml.safe_load(path.read_text()) or {})
    return merged


@dataclass
class Container:
    name: str
    command: list[str]
    args: list[str]
    env: list[dict[str, Any]]
    env_from: list[dict[str, Any]]
    volume_mounts: list[dict[str, Any]]
    ports: list[dict[str, Any]]
    readiness: dict[str, Any] | None
    liveness: dict[str, Any] | None
    startup: dict[str, Any] | None
    restart_policy: str | None  # "Always" marks a native sidecar among init containers

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Container:
        return cls(
            name=raw["name"],
            command=[str(x) for x in raw.get("command") or []],
            args=[str(x) for x in raw.get("args") or []],
            env=list(raw.get("env") or []),
            env_from=list(raw.get("envFrom") or []),
            volume_mounts=list(raw.get("volumeMounts") or []),
            ports=list(raw.get("ports") or []),
            readiness=raw.get("readinessProbe"),
            liveness=raw.get("livenessProbe"),
            startup=raw.get("startupProbe"),
            restart_policy=raw.get("restartPolicy"),
        )


@dataclass
class Workload:
    kind: str
    name: str
    component: str
    replicas: int
    containers: list[Container]
    init_containers: list[Container]
    volumes: dict[str, dict[str, Any]]
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)  # the pod template's
    termination_grace_seconds: int = 30  # Kubernetes' default when the pod sets none

    def container(self, name: str) -> Container | None:
        for c in [*self.containers, *self.init_containers]:
            if c.name == name:
                return c
        return None


@dataclass
class Rendering:
    documents: list[dict[str, Any]]

    @classmethod
    def parse(cls, text: str) -> Rendering:
        docs = [d for d in yaml.safe_load_all(text) if isinstance(d, dict) and d.get("kind")]
        return cls(docs)

    def of_kind(self, *kinds: str) -> list[dict[str, Any]]:
        return [d for d in self.documents if d["kind"] in kinds]

    def workloads(self) -> list[Workload]:
        out: list[Workload] = []
        for doc in self.of_kind("Deployment", "StatefulSet", "Job"):
            meta = doc["metadata"]
            spec = doc.get("spec") or {}
            template = spec.get("template") or {}
            pod = template.get("spec") or {}
            labels = meta.get("labels") or {}
            replicas = spec.get("replicas", 1) if doc["kind"] != "Job" else 1
            out.append(
                Workload(
                    kind=doc["kind"],
                    name=meta["name"],
                    component=labels.get(COMPONENT_LABEL, meta["name"]),
                    replicas=int(replicas if replicas is not None else 1),
                    containers=[Container.parse(c) for c in pod.get("containers") or []],
                    init_containers=[Container.parse(c) for c in pod.get("initContainers") or []],
                    volumes={v["name"]: v for v in pod.get("volumes") or []},
                    labels=labels,
                    annotations=dict((template.get("metadata") or {}).get("annotations") or {}),
                    termination_grace_seconds=int(pod.get("terminationGracePeriodSeconds", 30)),
                )
            )
        return out

    def scaler_of(self, workload: Workload) -> dict[str, Any] | None:
        """The KEDA ScaledObject, else the HorizontalPodAutoscaler, that scales `workload`."""
        for kind in ("ScaledObject", "HorizontalPodAutoscaler"):
            for doc in self.of_kind(kind):
                target = (doc.get("spec") or {}).get("scaleTargetRef") or {}
                if target.get("name") == workload.name and target.get("kind", "Deployment") == (
                    workload.kind
                ):
                    return doc
        return None

    def workload(self, component: str) -> Workload | None:
        for w in self.workloads():
            if w.component == component:
                return w
        return None

    def config_maps(self) -> dict[str, dict[str, str]]:
        return {d["metadata"]["name"]: dict(d.get("data") or {}) for d in self.of_kind("ConfigMap")}

    def secrets(self) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for d in self.of_kind("Secret"):
            data = {k: base64.b64decode(v).decode() for k, v in (d.get("data") or {}).items()}
            data.update(d.get("stringData") or {})
            out[d["metadata"]["name"]] = data
        return out

    def services(self) -> list[dict[str, Any]]:
        return self.of_kind("Service")

    def role_mapping(self) -> dict[str, list[str]]:
        """AUTH_ROLES_MAPPING of the rendered FAB configuration (groups -> roles)."""
        for data in self.config_maps().values():
            for text in data.values():
                for line in text.splitlines():
                    name, eq, value = line.partition("=")
                    if eq and name.strip() == "AUTH_ROLES_MAPPING":
                        return dict(json.loads(value))
        raise RenderError("the rendering has no AUTH_ROLES_MAPPING (auth.manager fab with oidc)")
