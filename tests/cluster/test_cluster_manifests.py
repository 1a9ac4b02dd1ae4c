"""Everything under manifests/ passes `kubectl apply --server-side --dry-run=server` on a real
API server with the CRDs it needs (KEDA, Prometheus Operator, Argo CD), and the server keeps
every field we wrote: Kubernetes 1.20 prunes unknown fields of custom resources silently, so
a dropped field means a typo or a field the CRD does not have."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from cluster_tools import REPO, Cluster
from kubernetes import client
from kubernetes.client.exceptions import ApiException

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

MANIFESTS = REPO / "manifests"
# Namespaces other tools own that our manifests are placed in (Argo CD's, the CloudWatch agent's).
FOREIGN_NAMESPACES = ("argocd", "amazon-cloudwatch")


def _objects(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


def _kubernetes_files(directory: Path) -> list[Path]:
    """The directory's Kubernetes manifests (not its rule tests, Fluent Bit or CloudFormation
    files, which other tests check)."""
    return [
        f
        for f in sorted(directory.rglob("*.yaml"))
        if "AWSTemplateFormatVersion" not in (text := f.read_text())
        and (docs := _objects(text))
        and all(isinstance(d, dict) and "apiVersion" in d and "kind" in d for d in docs)
    ]


DIRECTORIES = sorted(
    p
    for p in MANIFESTS.iterdir()
    if p.is_dir() and ((p / "kustomization.yaml").exists() or _kubernetes_files(p))
)


def _source(directory: Path) -> list[str]:
    """kubectl arguments for a directory: kustomize when it has a kustomization."""
    if (directory / "kustomization.yaml").exists():
        return ["-k", str(directory)]
    return [arg for f in _kubernetes_files(directory) for arg in ("-f", str(f))]


def _dropped(sent: object, kept: object, path: str = "") -> list[str]:
    """Paths of `sent` that the server did not keep with the same value."""
    if isinstance(sent, dict):
        if not isinstance(kept, dict):
            return [path or "."]
        return [
            p
            for key, value in sent.items()
            for p in (
                _dropped(value, kept[key], f"{path}.{key}") if key in kept else [f"{path}.{key}"]
            )
        ]
    if isinstance(sent, list):
        if not isinstance(kept, list) or len(sent) != len(kept):
            return [path]
        return [
            p
            for i, (a, b) in enumerate(zip(sent, kept, strict=True))
            for p in _dropped(a, b, f"{path}[{i}]")
        ]
    return [] if sent == kept else [f"{path} ({sent!r} -> {kept!r})"]


@pytest.fixture(scope="module")
def prepared(cluster: Cluster) -> Cluster:
    for name in FOREIGN_NAMESPACES:
        try:
            cluster.core.create_namespace(
                client.V1Namespace(metadata=client.V1ObjectMeta(name=name))
            )
        except ApiException as exc:
            if exc.status != 409:
                raise
    # Namespaced objects cannot be dry-run into a namespace that does not exist yet: apply
    # the namespaces for real first, as the README tells users to.
    cluster.kubectl("apply", "--server-side", "-f", str(MANIFESTS / "namespaces"))
    return cluster


def test_manifests_directory_is_not_empty() -> None:
    assert DIRECTORIES, "manifests/ has no directories"


@pytest.mark.parametrize("directory", DIRECTORIES, ids=[d.name for d in DIRECTORIES])
def test_server_side_dry_run_accepts_and_keeps_every_field(
    prepared: Cluster, directory: Path
) -> None:
    source = _source(directory)
    if source[0] == "-k":
        sent = _objects(prepared.kubectl("kustomize", str(directory)).stdout)
    else:
        sent = [o for f in _kubernetes_files(directory) for o in _objects(f.read_text())]
    assert sent, f"{directory} renders no objects"

    result = prepared.kubectl(
        "apply",
        "--server-side",
        "--dry-run=server",
        "--field-manager=manifests-test",
        "-o",
        "json",
        *source,
    )
    output = json.loads(result.stdout)
    returned = output["items"] if output.get("kind") == "List" else [output]
    by_key = {(o["kind"], o["metadata"]["name"]): o for o in returned}
    assert len(by_key) == len(sent), result.stdout[:2000]
    for obj in sent:
        key = (obj["kind"], obj["metadata"]["name"])
        assert key in by_key, f"{key} missing from the server's answer"
        dropped = _dropped(obj, by_key[key])
        assert not dropped, f"{directory.name}: the server dropped {dropped} of {key}"
