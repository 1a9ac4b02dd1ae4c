"""Kubernetes access for `ops`: a kubeconfig (or the in-cluster service account), one
context, one namespace, one release; every failure is an OpsError naming the fix."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_platform.ops.errors import OpsError

INSTANCE_LABEL = "app.kubernetes.io/instance"
COMPONENT_LABEL = "app.kubernetes.io/component"


@dataclass
class Target:
    """Which environment: kubeconfig/context (None = the defaults), namespace, release."""

    kubeconfig: Path | None = None
    context: str | None = None
    namespace: str = "airflow"
    release: str = "airflow"

    @property
    def selector(self) -> str:
        return f"{INSTANCE_LABEL}={self.release}"


@dataclass
class Kube:
    """The API clients bound to one target."""

    target: Target
    api: Any  # kubernetes.client.ApiClient

    @property
    def core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.api)

    @property
    def apps(self) -> Any:
        from kubernetes import client

        return client.AppsV1Api(self.api)

    @property
    def batch(self) -> Any:
        from kubernetes import client

        return client.BatchV1Api(self.api)

    @property
    def custom(self) -> Any:
        from kubernetes import client

        return client.CustomObjectsApi(self.api)

    def deployments(self) -> list[Any]:
        ns, sel = self.target.namespace, self.target.selector
        return list(self.call(self.apps.list_namespaced_deployment, ns, label_selector=sel).items)

    def scaled_objects(self) -> list[dict[str, Any]]:
        """The release's KEDA ScaledObjects; [] where KEDA's CRD is not installed."""
        from kubernetes.client.exceptions import ApiException

        try:
            found = self.custom.list_namespaced_custom_object(
                "keda.sh", "v1alpha1", self.target.namespace, "scaledobjects",
                label_selector=self.target.selector,
            )  # fmt: skip
        except ApiException as exc:
            if exc.status == 404:
                return []
            raise self.explain(exc) from None
        return list(found.get("items", []))

    def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return fn(*args, **kwargs)
        except ApiException as exc:
            raise self.explain(exc) from None
        except (HTTPError, OSError) as exc:
            raise OpsError(
                f"cannot reach the Kubernetes API server of context "
                f"{self.target.context or '(current)'}: {exc}. Check --kubeconfig/--context "
                "and that the cluster is reachable"
            ) from None

    def explain(self, exc: Any) -> OpsError:
        where = f"namespace {self.target.namespace!r}"
        if exc.status in (401, 403):
            return OpsError(
                f"the Kubernetes API refused the request in {where} ({exc.status} "
                f"{exc.reason}): use a --context whose identity may read Deployments, Jobs, "
                "Secrets and ScaledObjects there",
                exc.status,
            )
        if exc.status == 404:
            return OpsError(f"not found in {where}: {exc.reason}. Check --namespace", 404)
        return OpsError(f"Kubernetes API error in {where}: {exc.status} {exc.reason}", exc.status)


def connect(target: Target) -> Kube:
    """Load the kubeconfig (or the in-cluster configuration when none is given and the
    process runs in a pod) and check the namespace exists."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    path = target.kubeconfig
    if path is not None and not path.is_file():
        raise OpsError(f"--kubeconfig {path}: no such file")
    try:
        if (
            path is None
            and "KUBERNETES_SERVICE_HOST" in os.environ
            and not os.environ.get("KUBECONFIG")
        ):
            config.load_incluster_config()
            api = client.ApiClient()
        else:
            api = config.new_client_from_config(
                config_file=str(path) if path else None, context=target.context
            )
    except ConfigException as exc:
        hint = (
            f"--context {target.context!r} is not in the kubeconfig: list them with "
            "`kubectl config get-contexts`"
            if target.context and "context" in str(exc).lower()
            else "pass --kubeconfig (or set KUBECONFIG) and --context"
        )
        raise OpsError(f"cannot load the Kubernetes configuration ({exc}): {hint}") from None
    kube = Kube(target, api)
    kube.call(kube.core.read_namespace, target.namespace)
    return kube
