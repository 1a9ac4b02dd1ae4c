"""The chart's rendering -> local processes mapping, without starting anything."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from airflow_platform.local.mapping import LocalContext
from airflow_platform.local.platform import LocalPlatform
from airflow_platform.local.rendering import find_helm

pytestmark = pytest.mark.chart

REPO = Path(__file__).resolve().parents[2]
RUNTIME = {
    "celery.sqsQueueUrl": "http://127.0.0.1:4566/123456789012/celery",
    "dags.s3.bucket": "local-bucket",
    "dags.sync.eventQueueUrl": "http://127.0.0.1:4566/123456789012/events",
    "secretsBackend.vault.url": "http://127.0.0.1:8200",
    "aws.region": "us-east-1",
}


def _render_and_context(lp: LocalPlatform):
    """Render the chart for `lp` and a context with fixed stand-in endpoints (no services run)."""
    rendering = lp.render(find_helm(REPO), RUNTIME)
    ctx = LocalContext(
        state=lp.state,
        values=lp.values(),
        generated=lp.state.secrets(),
        database_url="postgresql://airflow:pw@127.0.0.1:5999/airflow",
        moto_endpoint="http://127.0.0.1:4566",
        vault_url="http://127.0.0.1:8200",
        vault_token="root-token",
        region="us-east-1",
        ports={},
    )
    return rendering, ctx


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory):
    lp = LocalPlatform(tmp_path_factory.mktemp("render") / "state")
    rendering, ctx = _render_and_context(lp)
    return lp, lp.plan(rendering, ctx)


def test_every_chart_component_becomes_a_process(plan) -> None:
    _, p = plan
    names = sorted(s.name for s in p["components"])
    assert names == [
        "api-server-0",
        "dag-processor-0",
        "execution-api-0",
        "scheduler-0",
        "scheduler-1",
        "triggerer-0",
        "worker-0",
    ]
    assert [s.name for s in p["migrations"]] == ["migrations"]
    assert [s.name for s in p["dagsync"]] == ["dagsync"]


def test_no_container_path_port_or_service_name_is_left(plan) -> None:
    lp, p = plan
    for spec in p["components"] + p["migrations"] + p["dagsync"]:
        text = json.dumps([spec.argv, spec.env])
        assert "/opt/airflow" not in text, spec.name
        assert ".svc" not in text, spec.name
        assert spec.env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4566"
        for port in spec.ports.values():
            assert port not in (8080, 8099, 8793, 8794, 8974), spec.name
    api = next(s for s in p["components"] if s.name == "api-server-0")
    assert api.http_probe is not None
    api_port = api.http_probe[1]
    assert api.env["AIRFLOW__API__PORT"] == str(api_port)
    # Tasks reach the execution API on its own process and port, not on the API server's.
    execution = next(s for s in p["components"] if s.name == "execution-api-0")
    assert execution.http_probe is not None and execution.http_probe[0] == "/execution/health"
    execution_port = execution.http_probe[1]
    assert execution_port != api_port
    assert execution.env["AIRFLOW__API__PORT"] == str(execution_port)
    for spec in p["components"]:
        url = spec.env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]
        assert re.fullmatch(rf"http://127\.0\.0\.1:{execution_port}/execution/?", url), url
        if spec.component == "worker":
            # The Celery result backend is a worker's only database access.
            assert "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" not in spec.env
            backend = spec.env["AIRFLOW__CELERY__RESULT_BACKEND"]
            assert backend.startswith("db+") and backend.endswith("127.0.0.1:5999/airflow")
        else:
            conn = spec.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
            assert conn.endswith("127.0.0.1:5999/airflow")
        assert spec.env["AIRFLOW__CORE__DAGS_FOLDER"] == str(lp.state.sync_root / "dags/current")


def test_vault_backend_keeps_paths_and_uses_the_dev_token(plan) -> None:
    _, p = plan
    worker = next(s for s in p["components"] if s.name == "worker-0")
    kwargs = json.loads(worker.env["AIRFLOW__SECRETS__BACKEND_KWARGS"])
    assert kwargs["auth_type"] == "token" and kwargs["token"] == "root-token"
    assert kwargs["url"] == "http://127.0.0.1:8200"
    assert not [k for k in kwargs if k.startswith("kubernetes_")]
    assert (kwargs["mount_point"], kwargs["connections_path"]) == ("airflow", "connections")


def test_workers_scale_by_the_rendered_scaled_object(plan) -> None:
    lp, p = plan
    scaling = lp.scaling
    # The local values (min 1, max 3), the mw1.small concurrency, the chart's idle window.
    assert (scaling.min_workers, scaling.max_workers) == (1, 3)
    assert scaling.tasks_per_worker == 5
    assert scaling.scale_in_idle_seconds == 120
    assert scaling.source.startswith("ScaledObject ")
    names = [s.name for s in p["workers"]]
    assert names == [f"worker-{i}" for i in range(2 * scaling.max_workers)]
    assert [s.name for s in p["components"] if s.component == "worker"] == ["worker-0"]
    # Each worker has its own address (its "pod IP") as its Airflow hostname, and its pod's
    # log-server container beside it, bound to that address on the port the API server uses.
    api = next(s for s in p["components"] if s.name == "api-server-0")
    api_log_port = api.env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"]
    addresses = [s.env["AIRFLOW_PLATFORM_POD_HOSTNAME"] for s in p["workers"]]
    assert addresses == [f"127.0.0.{i + 2}" for i in range(len(names))]
    for spec, address in zip(p["workers"], addresses, strict=True):
        # Celery's own log server would bind every interface: off.
        assert spec.argv[-3:] == ["celery", "worker", "--skip-serve-logs"]
        assert spec.env["AIRFLOW__CORE__HOSTNAME_CALLABLE"].endswith("hostname.pod_hostname")
        [log_server] = spec.companions
        assert log_server.name == f"{spec.name}-log-server"
        assert log_server.argv[-2:] == ["airflow_platform.local.log_server", address]
        assert log_server.env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] == api_log_port
        # It validates requests with the API secret key the API server signs them with.
        assert log_server.env["AIRFLOW__API__SECRET_KEY"] == api.env["AIRFLOW__API__SECRET_KEY"]


def test_each_process_logs_to_its_mwaa_log_group(plan) -> None:
    """The rendered pod annotation names the group; the runner records it per process."""
    lp, _ = plan
    groups = lp.last_plan.log_groups
    assert groups["scheduler-0"] == groups["triggerer-0"] == "airflow-local-Scheduler"
    assert groups["dag-processor-0"] == "airflow-local-DAGProcessing"
    assert groups["api-server-0"] == groups["execution-api-0"] == "airflow-local-WebServer"
    assert groups["worker-1"] == "airflow-local-Worker"


def test_the_admin_user_comes_from_the_rendered_role_mapping(plan, tmp_path: Path) -> None:
    from airflow_platform.local.rendering import Rendering
    from airflow_platform.local.users import admin_user

    lp, _ = plan
    rendering = Rendering.parse(lp.state.rendered.read_text())
    assert admin_user(rendering.role_mapping()) == "admin"
    # Mapped elsewhere, the admin is whoever is in the group mapped to Admin.
    assert admin_user({"airflow-ops": ["Admin"], "airflow-admins": ["Viewer"]}) == "op"
    with pytest.raises(LookupError, match="maps to Admin"):
        admin_user({"airflow-admins": ["Viewer"]})


def test_values_are_helms_own_with_no_fallback(plan) -> None:
    """`helm show values` plus the local file: the Vault mount is the local file's, and a key
    only the chart sets comes from the chart (not from a default of the runner)."""
    lp, _ = plan
    values = lp.values()
    assert values["secretsBackend"]["vault"]["mountPoint"] == "airflow"
    assert values["celery"]["visibilityTimeout"] == 43200


def test_without_keda_the_workers_scale_by_the_rendered_hpa(tmp_path: Path) -> None:
    extra = tmp_path / "values.yaml"
    extra.write_text(
        "workers: {keda: {enabled: false}, tasksPerWorker: 2, scaleInIdleSeconds: 30}\n"
    )
    lp = LocalPlatform(tmp_path / "state", values_files=[extra])
    rendering, ctx = _render_and_context(lp)
    lp.plan(rendering, ctx)
    assert lp.scaling.source.startswith("HorizontalPodAutoscaler ")
    assert (lp.scaling.min_workers, lp.scaling.max_workers) == (1, 3)
    assert (lp.scaling.tasks_per_worker, lp.scaling.scale_in_idle_seconds) == (2, 30)


def test_the_canary_bundle_is_read_from_the_repository(tmp_path: Path) -> None:
    """The canary's bundle path in the image (/opt/airflow-platform/dags/platform) is the
    repository's dags/platform on this machine."""
    extra = tmp_path / "values.yaml"
    extra.write_text("canary: {enabled: true}\n")
    lp = LocalPlatform(tmp_path / "state", values_files=[extra])
    rendering, ctx = _render_and_context(lp)
    processor = next(
        s for s in lp.plan(rendering, ctx)["components"] if s.name == "dag-processor-0"
    )
    bundles = json.loads(processor.env["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"])
    platform = next(b for b in bundles if b["name"] == "platform")
    assert platform["kwargs"]["path"] == str(REPO / "dags" / "platform")
    assert (REPO / "dags" / "platform" / "canary.py").is_file()
