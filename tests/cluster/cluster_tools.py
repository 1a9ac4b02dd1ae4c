"""kubectl and helm bound to the test cluster, and the handle tests receive."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from cluster_control_plane import ControlPlane
from cluster_kubelet_exec import KubeletExec
from cluster_node_agent import NodeAgent
from kubernetes import client

from airflow_platform.tools import ToolNotFoundError, find_tool

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
HELM_PLUGINS = HERE / "helm-plugins"


def _tool(name: str) -> str:
    """The bootstrapped helm/kubectl, else the one on PATH."""
    try:
        return find_tool(name, REPO)
    except ToolNotFoundError as exc:
        pytest.fail(str(exc))


class Kubectl:
    def __init__(self, kubeconfig: Path) -> None:
        self.binary = _tool("kubectl")
        self.env = {**os.environ, "KUBECONFIG": str(kubeconfig)}

    def __call__(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.binary, *args],
            input=input,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result


class Helm:
    """helm against the test cluster, with its own config/cache/data directories and the
    tier's post-renderer plugin directory."""

    def __init__(self, kubeconfig: Path, home: Path) -> None:
        self.binary = _tool("helm")
        home.mkdir(parents=True, exist_ok=True)
        self.rewrites = home / "post-render-rewrites.txt"
        self.env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_DATA_HOME": str(home / "data"),
            "HELM_PLUGINS": str(HELM_PLUGINS),
            "CLUSTER_TEST_PYTHON": sys.executable,
            "CLUSTER_TEST_REWRITES": str(self.rewrites),
        }

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 900
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.binary, *args], capture_output=True, text=True, env=self.env, timeout=timeout
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"helm {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result


@dataclass
class Cluster:
    control_plane: ControlPlane
    api: client.ApiClient
    agent: NodeAgent
    kubectl: Kubectl
    kubelet: KubeletExec

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.api)

    @property
    def kubeconfig(self) -> Path:
        return self.control_plane.kubeconfig


def required_secrets(values: dict) -> dict[str, set[str]]:
    """The existing Secrets (name -> keys) the chart's values refer to."""
    needed: dict[str, set[str]] = {}
    db = values["database"]
    needed.setdefault(db["existingSecret"], set()).add(db["secretKey"])
    keda = values.get("kedaDatabase") or {}
    if keda.get("existingSecret"):
        needed.setdefault(keda["existingSecret"], set()).add(keda["secretKey"])
    for ref in values["secrets"].values():
        if ref.get("secretName"):
            needed.setdefault(ref["secretName"], set()).add(ref["key"])
    results = db.get("resultBackendSecret") or {}
    if results.get("existingSecret"):
        needed.setdefault(results["existingSecret"], set()).add(results["secretKey"])
    oidc = (values.get("auth") or {}).get("oidc", {}).get("clientSecret") or {}
    if values.get("auth", {}).get("manager") == "fab" and oidc.get("existingSecret"):
        needed.setdefault(oidc["existingSecret"], set()).add(oidc["key"])
    for ref in (values.get("airflowConfigurationSecrets") or {}).values():
        needed.setdefault(ref["secretName"], set()).add(ref["key"])
    return needed


def chart_for_cluster(cluster: Cluster, work: Path) -> tuple[Path, Path]:
    """A copy of the chart whose kubeVersion admits the tier's 1.20, and the file of the
    cluster's served API versions that the served-apis post-renderer reads."""
    import re
    import shutil

    chart = work / "airflow-platform"
    shutil.copytree(REPO / "charts" / "airflow-platform", chart)
    chart_yaml = chart / "Chart.yaml"
    text = chart_yaml.read_text()
    assert re.search(r"^kubeVersion:", text, re.M), "Chart.yaml declares no kubeVersion"
    relaxed = re.sub(r"^kubeVersion:.*$", 'kubeVersion: ">=1.20.0-0"', text, flags=re.M)
    chart_yaml.write_text(relaxed)
    served = work / "served-api-versions.txt"
    served.write_text(cluster.kubectl("api-versions").stdout)
    return chart, served


def namespace_with_secrets(cluster: Cluster, namespace: str, values_file: Path) -> dict:
    """Create the namespace and every existing Secret the values refer to (random data);
    return the chart's defaults merged with the values file."""
    import secrets

    import yaml
    from kubernetes.client.exceptions import ApiException

    from airflow_platform.merge import deep_merge

    try:
        cluster.core.create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace))
        )
    except ApiException as exc:
        if exc.status != 409:
            raise
    chart = REPO / "charts" / "airflow-platform"
    values = deep_merge(
        yaml.safe_load((chart / "values.yaml").read_text()), yaml.safe_load(values_file.read_text())
    )
    for name, keys in required_secrets(values).items():
        data = {k: secrets.token_urlsafe(24) for k in keys}
        cluster.core.create_namespaced_secret(
            namespace, client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data=data)
        )
    return values
