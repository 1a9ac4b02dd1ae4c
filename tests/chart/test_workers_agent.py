"""The worker agent: a sidecar keeping the pod-deletion-cost of its own worker pod, the only
container with a Kubernetes API token, bound by a Role and (Kubernetes >= 1.30) an admission
policy to that one annotation of that one pod. The policy's CEL is evaluated here with
cel-python over admission requests shaped as the API server sends them."""

from __future__ import annotations

import copy
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import celpy
import pytest
import yaml

from airflow_platform.scaling.deletion_cost import DELETION_COST_ANNOTATION

from .conftest import (
    CHART,
    CI_DIR,
    NAMESPACE,
    RELEASE,
    container,
    containers,
    env_of,
    pod_spec,
)
from .test_manifests_valid import validation_errors

pytestmark = pytest.mark.chart

TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
VAP_API = "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy"
POD_NAME_EXTRA = "authentication.kubernetes.io/pod-name"


def _worker_pod(rendering) -> dict:
    return pod_spec(rendering.one("Deployment", "worker"))


def test_agent_runs_the_scaling_worker_agent_with_its_pod_identity(default) -> None:
    worker = default.one("Deployment", "worker")
    agent = container(worker, "worker-agent")
    assert agent["command"] == ["airflow-platform", "scaling", "worker-agent"]
    env = env_of(agent)
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["WORKER_AGENT_INTERVAL"]["value"] == "10"
    # The same database connection as the scheduler (the worker container itself has none).
    airflow = env_of(container(default.one("Deployment", "scheduler"), "scheduler"))
    conn = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
    assert env[conn]["valueFrom"] == airflow[conn]["valueFrom"]
    assert agent["image"] == container(worker, "worker")["image"]
    assert agent["securityContext"] == container(worker, "worker")["securityContext"]
    assert agent["resources"]["limits"] == {
        "cpu": "250m",
        "memory": "256Mi",
        "ephemeral-storage": "128Mi",
    }
    # Only what the agent needs: no Fernet key, API or JWT secret.
    assert not any(k in env for k in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET"))


def test_agent_follows_the_database_through_pgbouncer_and_a_custom_hostname(render) -> None:
    rendering = render(
        {
            "airflowConfigurationOptions": {"core.hostname_callable": "socket.gethostname"},
            "workers": {"deletionCostAgent": {"intervalSeconds": 2.5}},
        },
        files=("pgbouncer-values.yaml",),
    )
    env = env_of(container(rendering.one("Deployment", "worker"), "worker-agent"))
    assert env["AIRFLOW__CORE__HOSTNAME_CALLABLE"]["value"] == "socket.gethostname"
    assert env["WORKER_AGENT_INTERVAL"]["value"] == "2.5"
    secret = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]["valueFrom"]["secretKeyRef"]
    assert secret["name"] == "airflow-database-pgbouncer"


def test_only_the_agent_container_holds_an_api_token(default) -> None:
    worker = default.one("Deployment", "worker")
    pod = pod_spec(worker)
    assert pod["automountServiceAccountToken"] is False
    token_volumes = [
        v["name"]
        for v in pod["volumes"]
        if any("serviceAccountToken" in s for s in v.get("projected", {}).get("sources", []))
    ]
    assert token_volumes == ["worker-agent-token"]
    holders = {
        c["name"]
        for c in containers(worker)
        for m in c.get("volumeMounts", [])
        if m["name"] in token_volumes or m["mountPath"].startswith("/var/run/secrets/kubernetes")
    }
    assert holders == {"worker-agent"}
    mount = next(
        m for m in container(worker, "worker-agent")["volumeMounts"] if m["mountPath"] == TOKEN_DIR
    )
    assert mount == {"name": "worker-agent-token", "mountPath": TOKEN_DIR, "readOnly": True}
    # What in-cluster configuration reads: token, CA bundle and namespace, all in one place.
    sources = next(v for v in pod["volumes"] if v["name"] == "worker-agent-token")["projected"]
    paths = {
        item["path"]
        for s in sources["sources"]
        for item in (next(iter(s.values())).get("items") or [next(iter(s.values()))])
    }
    assert paths == {"token", "ca.crt", "namespace"}
    assert sources["sources"][0]["serviceAccountToken"]["expirationSeconds"] == 3600
    # The agent's scratch space is its own, not the worker's /tmp.
    scratch = {m["mountPath"]: m["name"] for m in container(worker, "worker-agent")["volumeMounts"]}
    assert scratch["/tmp"] == "worker-agent-tmp"


def test_no_other_pod_mounts_a_token(default) -> None:
    for workload in default.workloads():
        if workload["metadata"]["name"].endswith("-worker"):
            continue
        for volume in pod_spec(workload).get("volumes", []):
            assert "projected" not in volume or not any(
                "serviceAccountToken" in s for s in volume["projected"]["sources"]
            ), workload["metadata"]["name"]


def test_agent_can_be_switched_off(render) -> None:
    rendering = render({"workers": {"deletionCostAgent": {"enabled": False}}})
    pod = _worker_pod(rendering)
    assert [c["name"] for c in pod["containers"]] == ["worker", "dagsync", "log-server"]
    assert not any(v["name"].startswith("worker-agent") for v in pod["volumes"])
    assert rendering.all("Role") == rendering.all("RoleBinding") == []


def test_role_lets_only_the_worker_account_get_and_patch_pods(default) -> None:
    role = default.one("Role", "worker")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "patch"]}]
    binding = default.one("RoleBinding", "worker")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    account = _worker_pod(default)["serviceAccountName"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}
    ]


# -- the admission policy -----------------------------------------------------------------


def _helm_template(helm_bin: str, values: dict[str, Any] | None, *args: str) -> Any:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        yaml.safe_dump(values or {}, handle)
    try:
        return subprocess.run(
            [
                helm_bin, "template", RELEASE, str(CHART), "--namespace", NAMESPACE,
                "-f", str(CI_DIR / "default-values.yaml"), "-f", handle.name, *args,
            ],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        Path(handle.name).unlink()


def _render_with(helm_bin: str, values: dict[str, Any] | None = None, *args: str) -> list[dict]:
    done = _helm_template(helm_bin, values, *args)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def _render_with_api_versions(helm_bin: str, values: dict[str, Any] | None = None) -> list[dict]:
    return _render_with(helm_bin, values, "--kube-version", "1.29.0", "--api-versions", VAP_API)


@pytest.fixture(scope="module")
def with_policy(helm_bin: str) -> list[dict]:
    return _render_with_api_versions(helm_bin)


def _one(objects: list[dict], kind: str) -> dict:
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, (kind, len(found))
    return found[0]


def _kinds(objects: list[dict]) -> set[str]:
    return {o["kind"] for o in objects}


AGENT_KINDS = {
    "Role",
    "RoleBinding",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
}


def test_policy_travels_with_the_role(default, with_policy, helm_bin) -> None:
    # helm's own default target (plain `helm template`) is a current Kubernetes.
    assert _kinds(default.objects) >= AGENT_KINDS
    assert _kinds(_render_with(helm_bin, None, "--kube-version", "1.30.0")) >= AGENT_KINDS
    policy = _one(with_policy, "ValidatingAdmissionPolicy")
    binding = _one(with_policy, "ValidatingAdmissionPolicyBinding")
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert NAMESPACE in policy["metadata"]["name"]  # cluster-scoped: one per release namespace
    assert "namespace" not in policy["metadata"]
    off = _render_with_api_versions(
        helm_bin, {"workers": {"deletionCostAgent": {"enabled": False}}}
    )
    assert not AGENT_KINDS & _kinds(off)


def test_helm_refuses_the_role_where_the_policy_cannot_be_served(helm_bin) -> None:
    """Kubernetes < 1.30 (or an offline render told so) has no ValidatingAdmissionPolicy:
    the Role alone would let any worker pod patch every pod of the namespace."""
    refused = _helm_template(helm_bin, None, "--kube-version", "1.29.0")
    assert refused.returncode != 0
    message = " ".join(refused.stderr.split())
    assert "workers.deletionCostAgent.enabled=false" in message
    assert "Kubernetes v1.29.0" in message
    assert "--kube-version 1.30" in message and f"--api-versions {VAP_API}" in message
    off = _render_with(
        helm_bin, {"workers": {"deletionCostAgent": {"enabled": False}}}, "--kube-version", "1.29.0"
    )
    assert not AGENT_KINDS & _kinds(off)
    worker = next(o for o in off if o["kind"] == "Deployment" and "worker" in o["metadata"]["name"])
    assert "worker-agent" not in [c["name"] for c in pod_spec(worker)["containers"]]


def test_policy_objects_are_schema_valid(with_policy) -> None:
    for kind in ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"):
        assert validation_errors(_one(with_policy, kind)) == []
    broken = copy.deepcopy(_one(with_policy, "ValidatingAdmissionPolicy"))
    broken["spec"]["validations"][0]["expresion"] = "true"
    assert validation_errors(broken)


class Policy:
    """Evaluates a ValidatingAdmissionPolicy as the API server does: match conditions, then
    the variables, then every validation (a false one denies with its message)."""

    def __init__(self, policy: dict) -> None:
        self.spec = policy["spec"]
        env = celpy.Environment()
        self._compile = lambda text: env.program(env.compile(text))
        self.conditions = [self._compile(c["expression"]) for c in self.spec["matchConditions"]]
        self.variables = [
            (v["name"], self._compile(v["expression"])) for v in self.spec["variables"]
        ]
        self.validations = [
            (self._compile(v["expression"]), v["message"]) for v in self.spec["validations"]
        ]

    def matches(self, request: dict, pod: dict) -> bool:
        rule = self.spec["matchConstraints"]["resourceRules"][0]
        selector = self.spec["matchConstraints"]["namespaceSelector"]["matchLabels"]
        return (
            request["operation"] in rule["operations"]
            and request["resource"]["resource"] in rule["resources"]
            and not request.get("subResource")
            and selector == {"kubernetes.io/metadata.name": pod["metadata"]["namespace"]}
        )

    def denials(self, request: dict, old: dict, new: dict) -> list[str]:
        activation: dict[str, Any] = {
            "request": celpy.json_to_cel(request),
            "object": celpy.json_to_cel(new),
            "oldObject": celpy.json_to_cel(old),
        }
        if not self.matches(request, old):
            return []
        if not all(bool(c.evaluate(activation)) for c in self.conditions):
            return []
        values: dict[str, Any] = {}
        for name, program in self.variables:
            values[name] = program.evaluate({**activation, "variables": celpy.json_to_cel(values)})
        activation["variables"] = celpy.json_to_cel(values)
        return [
            message for program, message in self.validations if not program.evaluate(activation)
        ]


@pytest.fixture(scope="module")
def policy(with_policy) -> Policy:
    return Policy(_one(with_policy, "ValidatingAdmissionPolicy"))


def _pod(name: str, cost: str | None = None) -> dict:
    annotations = {"airflow-platform.io/environment-checksum": "abc"}
    if cost is not None:
        annotations[DELETION_COST_ANNOTATION] = cost
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {"app.kubernetes.io/component": "worker", "pod-template-hash": "7f9c"},
            "annotations": annotations,
            "ownerReferences": [{"kind": "ReplicaSet", "name": "worker-7f9c", "uid": "u1"}],
        },
        "spec": {"containers": [{"name": "worker", "image": "airflow-platform:0.1.0"}]},
    }


def _request(username: str, pod_name: str | None, subresource: str = "") -> dict:
    extra = {"authentication.kubernetes.io/pod-uid": ["uid-1"]}
    if pod_name is not None:
        extra[POD_NAME_EXTRA] = [pod_name]
    request = {
        "operation": "UPDATE",
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "userInfo": {"username": username, "extra": extra},
    }
    if subresource:
        request["subResource"] = subresource
    return request


AGENT = f"system:serviceaccount:{NAMESPACE}:airflow-airflow-platform-worker"
ME = "airflow-airflow-platform-worker-7f9c-abcde"


def _with(pod: dict, path: tuple[str | int, ...], value: Any) -> dict:
    changed = copy.deepcopy(pod)
    node = changed
    for key in path[:-1]:
        node = node[key]
    if value is None:
        node.pop(path[-1])
    else:
        node[path[-1]] = value
    return changed


def test_policy_matches_the_rendered_worker_account(policy, default) -> None:
    account = _worker_pod(default)["serviceAccountName"]
    assert f"system:serviceaccount:{NAMESPACE}:{account}" == AGENT
    assert account in policy.spec["matchConditions"][0]["expression"]


@pytest.mark.parametrize(
    ("old_cost", "new_cost"), [(None, "0"), ("0", "3"), ("3", "0"), ("12", "2147483647")]
)
def test_policy_admits_the_agent_setting_its_own_cost(policy, old_cost, new_cost) -> None:
    old = _pod(ME, old_cost)
    new = _with(old, ("metadata", "annotations", DELETION_COST_ANNOTATION), new_cost)
    assert policy.denials(_request(AGENT, ME), old, new) == []


def _cost_patch(pod: dict) -> dict:
    return _with(pod, ("metadata", "annotations", DELETION_COST_ANNOTATION), "1")


DENIED = {
    "another pod": (
        _request(AGENT, "airflow-airflow-platform-worker-7f9c-other"),
        _cost_patch,
        "only its own pod",
    ),
    "a token bound to no pod": (_request(AGENT, None), _cost_patch, "only its own pod"),
    "a label": (
        _request(AGENT, ME),
        lambda p: _with(p, ("metadata", "labels", "pod-template-hash"), "x"),
        "labels",
    ),
    "a label removed": (
        _request(AGENT, ME),
        lambda p: _with(p, ("metadata", "labels"), None),
        "labels",
    ),
    "another annotation": (
        _request(AGENT, ME),
        lambda p: _with(p, ("metadata", "annotations", "airflow-platform.io/x"), "1"),
        "no annotation but",
    ),
    "an annotation removed": (
        _request(AGENT, ME),
        lambda p: _with(
            p, ("metadata", "annotations", "airflow-platform.io/environment-checksum"), None
        ),
        "no annotation but",
    ),
    "the spec": (
        _request(AGENT, ME),
        lambda p: _with(p, ("spec", "containers", 0, "image"), "evil:latest"),
        "spec",
    ),
    "the owner": (
        _request(AGENT, ME),
        lambda p: _with(p, ("metadata", "ownerReferences"), None),
        "owners",
    ),
    "a cost that is no integer": (
        _request(AGENT, ME),
        lambda p: _with(p, ("metadata", "annotations", DELETION_COST_ANNOTATION), "1; x"),
        "must be an integer",
    ),
}


@pytest.mark.parametrize("change", sorted(DENIED))
def test_policy_denies_the_agent_anything_else(policy, change) -> None:
    request, mutate, reason = DENIED[change]
    old = _pod(ME, "0")
    denials = policy.denials(request, old, mutate(old))
    assert len(denials) == 1 and reason in denials[0], denials


def test_policy_leaves_everyone_else_alone(policy) -> None:
    old = _pod(ME, "0")
    relabelled = _with(old, ("metadata", "labels", "pod-template-hash"), "x")
    controller = _request("system:serviceaccount:kube-system:replicaset-controller", None)
    assert policy.denials(controller, old, relabelled) == []
    other_namespace = _with(old, ("metadata", "namespace"), "elsewhere")
    assert policy.denials(_request(AGENT, None), other_namespace, relabelled) == []
    # Subresources (status, ephemeral containers) are outside the policy and outside the Role.
    assert policy.denials(_request(AGENT, None, "status"), old, relabelled) == []
