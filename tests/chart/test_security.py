"""Secure by default: non-root, read-only root filesystem with emptyDirs where Airflow
writes, no capabilities, RuntimeDefault seccomp, no Kubernetes API token, no static AWS keys."""

from __future__ import annotations

import pytest

from .conftest import AIRFLOW_COMPONENTS, ci_files, container, containers, pod_spec

pytestmark = pytest.mark.chart

WRITABLE = {
    "/tmp",
    "/opt/airflow/logs",
    "/opt/airflow/packages",
    "/opt/airflow/wheel-cache",
    "/home/airflow/.cache",
}


@pytest.mark.parametrize("values_file", ci_files())
def test_every_container_is_locked_down(render, values_file) -> None:
    rendering = render(files=(values_file,))
    checked = 0
    for workload in rendering.workloads():
        pod = pod_spec(workload)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        for c in containers(workload):
            sc = c["securityContext"]
            where = f"{workload['kind']}/{workload['metadata']['name']}/{c['name']}"
            assert sc["runAsNonRoot"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["capabilities"] == {"drop": ["ALL"]}, where
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, where
            assert sc.get("privileged", False) is False, where
            assert c["resources"]["limits"]["memory"], where
            checked += 1
    assert checked >= 12


@pytest.mark.parametrize("component", AIRFLOW_COMPONENTS)
def test_airflow_runs_as_the_image_user_with_writable_scratch(default, component) -> None:
    deployment = default.one("Deployment", component)
    assert pod_spec(deployment)["securityContext"]["runAsUser"] == 50000
    airflow = container(deployment, component)
    mounts = {m["mountPath"]: m for m in airflow["volumeMounts"]}
    assert set(mounts) >= WRITABLE
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    for path in WRITABLE:
        assert "emptyDir" in volumes[mounts[path]["name"]], path
    assert mounts["/opt/airflow/sync"]["readOnly"] is True


def test_no_static_aws_keys_anywhere(render) -> None:
    for values_file in ci_files():
        text = render(files=(values_file,)).text
        for forbidden in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "aws_secret_access_key"):
            assert forbidden not in text, (values_file, forbidden)


def test_service_accounts_do_not_mount_api_tokens(default) -> None:
    accounts = default.all("ServiceAccount")
    assert len(accounts) == 7
    assert all(a["automountServiceAccountToken"] is False for a in accounts)
    # The one exception, the worker agent's own-pod deletion cost: test_workers_agent.py.
    roles = [r["metadata"]["name"] for r in default.all("Role")]
    assert roles == ["airflow-airflow-platform-worker-agent"]
    assert [b["roleRef"]["name"] for b in default.all("RoleBinding")] == roles


def test_vault_kubernetes_auth_gets_a_vault_only_token(render) -> None:
    rendering = render(files=("vault-values.yaml",))
    pod = pod_spec(rendering.one("Deployment", "worker"))
    assert pod["automountServiceAccountToken"] is False
    token = next(v for v in pod["volumes"] if v["name"] == "vault-token")
    source = token["projected"]["sources"][0]["serviceAccountToken"]
    assert source["audience"] == "vault"
    assert source["expirationSeconds"] <= 3600


@pytest.mark.parametrize("values_file", ci_files())
def test_no_airflow_setting_is_rendered_as_a_plain_credential(render, values_file) -> None:
    """What config_rules calls a credential never appears as an env value: only from Secrets."""
    from airflow_platform.environment.config_rules import (
        CREDENTIAL_URL,
        env_var_config_key,
        is_sensitive,
    )

    rendering = render(files=(values_file,))
    checked = 0
    for workload in rendering.workloads():
        for c in containers(workload):
            for entry in c.get("env", []):
                key = env_var_config_key(entry["name"])
                if key is None or "value" not in entry:
                    continue
                checked += 1
                assert not is_sensitive(key), f"{entry['name']} is rendered as a value"
                assert not CREDENTIAL_URL.search(entry["value"]), entry["name"]
    assert checked > 50
