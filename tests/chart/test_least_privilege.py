"""Each component holds only the secrets it uses (the chart README's matrix, read and compared
with the rendering), and the task execution API runs apart from the user-facing API server."""

from __future__ import annotations

import pytest

from .conftest import CHART, HelmError, ci_files, container, env_of, pod_spec
from .conftest import containers as workload_containers

pytestmark = pytest.mark.chart

# Matrix column -> the env entry (or, for files, the volume mount) that carries it.
COLUMNS = {
    "DB URL": "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "Fernet key": "AIRFLOW__CORE__FERNET_KEY",
    "JWT secret": "AIRFLOW__API_AUTH__JWT_SECRET",
    "JWT private key": "mount:jwt-private-key",
    "JWT public keys": "mount:jwt-public-keys",
    "API secret key": "AIRFLOW__API__SECRET_KEY",
    "Result backend": "AIRFLOW_PLATFORM_RESULT_BACKEND_URL",
    "OIDC client secret": "AIRFLOW_PLATFORM_OIDC_CLIENT_SECRET",
}
# Matrix row -> (workload kind, component, container).
ROWS = {
    "scheduler": ("Deployment", "scheduler", "scheduler"),
    "dag-processor": ("Deployment", "dag-processor", "dag-processor"),
    "triggerer": ("Deployment", "triggerer", "triggerer"),
    "api-server": ("Deployment", "api-server", "api-server"),
    "execution-api": ("Deployment", "execution-api", "execution-api"),
    "worker": ("Deployment", "worker", "worker"),
    "worker pod's log-server container": ("Deployment", "worker", "log-server"),
    "worker pod's worker-agent container": ("Deployment", "worker", "worker-agent"),
    "dag-processor pod's dagsync sidecar (`dags.sync.parseRequests`)": (
        "Deployment",
        "dag-processor",
        "dagsync",
    ),
    "migrations": ("Job", "migrations", "migrations"),
}
SIGNING_KEYS = (
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
    "AIRFLOW__API_AUTH__JWT_PRIVATE_KEY_PATH",
)
# The JWT columns of one signing mode (secrets.jwtSigning): the other mode's stay empty.
SYMMETRIC_ONLY = {"JWT secret"}
ASYMMETRIC_ONLY = {"JWT private key", "JWT public keys"}


def readme_matrix() -> dict[str, dict[str, bool]]:
    text = (CHART / "README.md").read_text()
    section = text.split("### Secrets per component", 1)[1]
    lines = [
        line for line in section.split("\n\n| Component |", 1)[1].split("\n\n")[0].splitlines()
    ]
    header = ["Component", *(c.strip() for c in lines[0].strip("|").split("|"))]
    matrix: dict[str, dict[str, bool]] = {}
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert set(cells[1:]) <= {"yes", "no"}, line
        matrix[cells[0]] = {h: c == "yes" for h, c in zip(header[1:], cells[1:], strict=True)}
    return matrix


# The dagsync sidecar reads the database URL under a name of its own.
SAME_SECRET = {"DAGSYNC_DATABASE_URL": COLUMNS["DB URL"]}


def secret_envs(c: dict) -> set[str]:
    return {
        SAME_SECRET.get(k, k)
        for k, e in env_of(c).items()
        if "secretKeyRef" in e.get("valueFrom", {})
    }


def containers(rendering) -> list[dict]:
    """Every container of every workload of a rendering."""
    return [c for w in rendering.workloads() for c in workload_containers(w)]


def key_files(c: dict) -> set[str]:
    """The signing key files a container mounts (secrets.jwtSigning)."""
    return {
        f"mount:{m['name']}"
        for m in c.get("volumeMounts", [])
        if m["name"] in ("jwt-private-key", "jwt-public-keys")
    }


@pytest.mark.parametrize("values_file", ci_files())
def test_readme_matrix_is_what_every_container_receives(render, values_file) -> None:
    rendering = render(files=(values_file,))
    matrix = readme_matrix()
    assert set(matrix) == set(ROWS)
    for row, (kind, component, name) in ROWS.items():
        workload = rendering.all(kind, component)
        if not workload:
            continue
        names = [c["name"] for c in pod_spec(workload[0])["containers"]]
        if name not in names:
            continue  # e.g. the worker agent switched off
        got = secret_envs(container(workload[0], name)) | key_files(container(workload[0], name))
        signing = any("mount:jwt-private-key" in key_files(c) for c in containers(rendering))
        other_mode = SYMMETRIC_ONLY if signing else ASYMMETRIC_ONLY
        wanted = {
            COLUMNS[col]
            for col, has in matrix[row].items()
            if has and col in COLUMNS and col not in other_mode
        }
        assert got == wanted, (values_file, row)


def test_the_matrix_covers_the_signing_mode(render) -> None:
    """The matrix check runs on a rendering with secrets.jwtSigning (its own ci file)."""
    rendering = render(files=("jwt-signing-values.yaml",))
    assert any("mount:jwt-private-key" in key_files(c) for c in containers(rendering))
    for c in containers(rendering):
        assert "AIRFLOW__API_AUTH__JWT_SECRET" not in secret_envs(c)


def test_readme_matrix_check_can_fail(default) -> None:
    worker = container(default.one("Deployment", "worker"), "worker")
    assert secret_envs(worker) != {COLUMNS["DB URL"], COLUMNS["Result backend"]}


@pytest.mark.parametrize("values_file", ci_files())
def test_task_code_gets_no_key_that_signs_or_decrypts(render, values_file) -> None:
    worker = container(render(files=(values_file,)).one("Deployment", "worker"), "worker")
    env = env_of(worker)
    present = [k for k in (*SIGNING_KEYS, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN") if k in env]
    assert present == []
    # No other way in either: no Secret through envFrom (users may add ConfigMaps), no secret
    # volume, no _CMD/_SECRET variants.
    assert not any("secretRef" in source for source in worker.get("envFrom", []))
    assert not any(k.endswith(("_CMD", "_SECRET")) and k.startswith("AIRFLOW__") for k in env)
    volumes = pod_spec(render(files=(values_file,)).one("Deployment", "worker"))["volumes"]
    mounted = {m["name"] for m in worker["volumeMounts"]}
    assert not any("secret" in v for v in volumes if v["name"] in mounted)


def test_result_backend_has_a_secret_of_its_own(default) -> None:
    for component in ("worker", "scheduler"):
        env = env_of(container(default.one("Deployment", component), component))
        ref = env["AIRFLOW_PLATFORM_RESULT_BACKEND_URL"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "airflow-results", "key": "connection"}
        backend = env["AIRFLOW__CELERY__RESULT_BACKEND"]["value"]
        assert backend == "db+$(AIRFLOW_PLATFORM_RESULT_BACKEND_URL)"
    scheduler = env_of(container(default.one("Deployment", "scheduler"), "scheduler"))
    db = scheduler["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]["valueFrom"]["secretKeyRef"]
    assert db["name"] == "airflow-database"


def test_result_backend_secret_is_required(render) -> None:
    with pytest.raises(HelmError) as refused:
        render({"database": {"resultBackendSecret": {"existingSecret": ""}}})
    assert "database.resultBackendSecret.existingSecret is required" in refused.value.stderr
    assert "useDatabaseSecret=true" in refused.value.stderr


def test_workers_get_the_metadata_database_only_when_told(render) -> None:
    values = {
        "database": {"resultBackendSecret": {"existingSecret": "", "useDatabaseSecret": True}}
    }
    worker = container(render(values).one("Deployment", "worker"), "worker")
    ref = env_of(worker)["AIRFLOW_PLATFORM_RESULT_BACKEND_URL"]["valueFrom"]["secretKeyRef"]
    assert ref["name"] == "airflow-database"


@pytest.mark.parametrize("component", ["scheduler", "api-server", "execution-api", "triggerer"])
def test_waiting_for_migrations_needs_the_database_alone(default, component) -> None:
    wait = container(default.one("Deployment", component), "wait-for-migrations")
    assert secret_envs(wait) == {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"}


def test_user_facing_api_server_serves_the_core_apps_only(default) -> None:
    api = container(default.one("Deployment", "api-server"), "api-server")
    assert api["args"] == ["api-server", "--apps", "core"]
    ingress = default.one("Ingress", "api-server")
    backends = [
        p["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
        for p in rule["http"]["paths"]
    ]
    assert backends == [default.one("Service", "api-server")["metadata"]["name"]]


def test_execution_api_is_an_internal_component(default) -> None:
    deployment = default.one("Deployment", "execution-api")
    api = container(deployment, "execution-api")
    assert api["args"] == ["api-server", "--apps", "execution"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert api[probe]["httpGet"] == {"path": "/execution/health", "port": "http"}
    spec = pod_spec(deployment)
    assert (
        spec["serviceAccountName"]
        == default.one("ServiceAccount", "execution-api")["metadata"]["name"]
    )
    assert [c["name"] for c in spec["containers"]] == ["execution-api"]  # no dagsync
    service = default.one("Service", "execution-api")
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert default.one("PodDisruptionBudget", "execution-api")["spec"]["maxUnavailable"] == 1
    assert deployment["spec"]["replicas"] == 2


def test_single_execution_api_has_no_pdb(render) -> None:
    rendering = render({"executionApi": {"replicas": 1}})
    assert rendering.all("PodDisruptionBudget", "execution-api") == []
