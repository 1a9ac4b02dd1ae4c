"""dags.sync.parseRequests: the dag-processor pod's dagsync sidecar, and only it, gets the
DAG processor's database URL to write parse requests for what each sync changed."""

from __future__ import annotations

import pytest

from .conftest import AIRFLOW_COMPONENTS, HelmError, container, env_of

pytestmark = pytest.mark.chart

DB_SECRET = {"secretKeyRef": {"name": "airflow-database", "key": "connection"}}


def test_dag_processor_sidecar_gets_the_database_and_the_bundle(default) -> None:
    sidecar = env_of(container(default.one("Deployment", "dag-processor"), "dagsync"))
    assert sidecar["DAGSYNC_DATABASE_URL"] == {
        "name": "DAGSYNC_DATABASE_URL",
        "valueFrom": DB_SECRET,
    }
    assert sidecar["DAGSYNC_DAG_BUNDLE"]["value"] == "dags-folder"
    # The same Secret and key as the DAG processor's own connection.
    airflow = env_of(container(default.one("Deployment", "dag-processor"), "dag-processor"))
    assert airflow["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]["valueFrom"] == DB_SECRET


@pytest.mark.parametrize("component", AIRFLOW_COMPONENTS)
def test_no_other_dagsync_container_gets_the_database(default, component) -> None:
    deployment = default.one("Deployment", component)
    names = ["dagsync-init"] + (["dagsync"] if component != "dag-processor" else [])
    for name in names:
        env = env_of(container(deployment, name))
        assert "DAGSYNC_DATABASE_URL" not in env, f"{component}/{name}"
        assert "DAGSYNC_DAG_BUNDLE" not in env, f"{component}/{name}"


def test_through_pgbouncer_when_it_runs(render) -> None:
    rendering = render(files=("default-values.yaml", "pgbouncer-generated-values.yaml"))
    sidecar = env_of(container(rendering.one("Deployment", "dag-processor"), "dagsync"))
    airflow = env_of(container(rendering.one("Deployment", "dag-processor"), "dag-processor"))
    assert (
        sidecar["DAGSYNC_DATABASE_URL"]["valueFrom"]
        == airflow["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]["valueFrom"]
    )
    assert sidecar["DAGSYNC_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == (
        "airflow-database-pgbouncer"
    )


def test_off_leaves_the_sidecar_without_the_database(render) -> None:
    rendering = render({"dags": {"sync": {"parseRequests": False}}})
    env = env_of(container(rendering.one("Deployment", "dag-processor"), "dagsync"))
    assert "DAGSYNC_DATABASE_URL" not in env and "DAGSYNC_DAG_BUNDLE" not in env


def test_chart_keeps_mwaa_listing_interval(default) -> None:
    """Visibility comes from the parse requests, not from a shorter listing interval."""
    env = env_of(container(default.one("Deployment", "dag-processor"), "dag-processor"))
    assert env["AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL"]["value"] == "300"


@pytest.mark.parametrize("bad", ["yes", 1, [True]])
def test_schema_refuses_a_non_boolean(render, bad) -> None:
    with pytest.raises(HelmError, match="parseRequests"):
        render({"dags": {"sync": {"parseRequests": bad}}})


def test_with_parse_requests_unchanged_files_are_reparsed_every_five_minutes(default) -> None:
    """Every synced change is parsed at once, so the periodic re-parse of unchanged files
    (MWAA: every 30 s) only follows outside state and need not keep the processor busy."""
    env = env_of(container(default.one("Deployment", "dag-processor"), "dag-processor"))
    assert env["AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL"]["value"] == "300"


def test_without_parse_requests_files_are_reparsed_at_mwaa_pace(render) -> None:
    rendering = render({"dags": {"sync": {"parseRequests": False}}})
    env = env_of(container(rendering.one("Deployment", "dag-processor"), "dag-processor"))
    assert env["AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL"]["value"] == "30"


def test_the_reparse_interval_is_the_user_s_to_set(render) -> None:
    options = {"dag_processor.min_file_process_interval": "30"}
    rendering = render({"airflowConfigurationOptions": options})
    env = env_of(container(rendering.one("Deployment", "dag-processor"), "dag-processor"))
    assert env["AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL"]["value"] == "30"
