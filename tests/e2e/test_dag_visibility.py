"""A DAG put in S3 reaches the API long before the DAG processor would list its folder on
the chart's defaults (`dag_processor.refresh_interval` 300 s, MWAA's): the dag-processor
pod's dagsync sidecar writes parse requests and the DAG processor parses those files at once.

Each wait ends before the DAG processor's next listing could run (its bundle's
`last_refreshed` + refresh_interval), so without the parse requests these tests fail."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
import yaml

from airflow_platform.local.platform import LocalPlatform
from airflow_platform.procs import wait_until

pytestmark = pytest.mark.e2e

BUNDLE = "dags-folder"
MIN_WINDOW = 60.0  # seconds left before the next listing for a wait to prove anything

DAG_SOURCE = """
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG(dag_id="{dag_id}", schedule=None, tags=["{tag}"]):
    EmptyOperator(task_id="only")
"""


def _dag_processor_env(platform: LocalPlatform) -> dict[str, str]:
    for doc in yaml.safe_load_all(platform.state.rendered.read_text()):
        labels = (doc or {}).get("metadata", {}).get("labels", {})
        if (
            doc
            and doc["kind"] == "Deployment"
            and (labels.get("app.kubernetes.io/component") == "dag-processor")
        ):
            containers = doc["spec"]["template"]["spec"]["containers"]
            main = next(c for c in containers if c["name"] == "dag-processor")
            return {e["name"]: e.get("value", "") for e in main["env"]}
    raise AssertionError("no dag-processor Deployment in the rendering")


@pytest.fixture(scope="module")
def refresh_interval(platform: LocalPlatform) -> float:
    env = _dag_processor_env(platform)
    value = float(env["AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL"])
    # The chart's own default: no local override shortens the listing.
    assert value == 300
    return value


@pytest.fixture(scope="module")
def metadata(platform: LocalPlatform):
    engine = sa.create_engine(platform.state.load()["autoscaling"]["database_url"])
    yield engine
    engine.dispose()


def _window(metadata: sa.Engine, refresh_interval: float) -> float:
    """Seconds until the DAG processor may list the DAGs folder again on its own; waits
    (by polling the bundle's state) when that is too close for a wait to prove anything."""

    def left() -> float | None:
        with metadata.connect() as conn:
            last = conn.execute(
                sa.text("SELECT last_refreshed FROM dag_bundle WHERE name = :n"), {"n": BUNDLE}
            ).scalar_one()
        seconds = last.timestamp() + refresh_interval - datetime.now(UTC).timestamp()
        return seconds if seconds >= MIN_WINDOW else None

    return float(wait_until(left, refresh_interval + 60, "a listing window", 1.0))  # type: ignore[arg-type]


def _put(s3_client, bucket: dict[str, str], dag_id: str, tag: str) -> None:
    body = DAG_SOURCE.format(dag_id=dag_id, tag=tag)
    s3_client.put_object(Bucket=bucket["name"], Key=f"{bucket['prefix']}{dag_id}.py", Body=body)


def test_new_changed_and_deleted_dag_files_reach_the_api_before_the_next_listing(
    api, bucket, s3_client, helpers, metadata, refresh_interval
) -> None:
    dag_id = helpers.unique("e2e_visible")
    window = _window(metadata, refresh_interval)
    put_at = time.monotonic()
    _put(s3_client, bucket, dag_id, "first")
    dag = wait_until(lambda: api.dag(dag_id), window, f"{dag_id} in the API before the listing")
    assert dag["tags"][0]["name"] == "first", helpers.dump(dag)  # type: ignore[index]
    print(f"new DAG visible {time.monotonic() - put_at:.2f} s after the put")

    window = _window(metadata, refresh_interval)
    _put(s3_client, bucket, dag_id, "second")

    def retagged() -> bool:
        current = api.dag(dag_id) or {}
        return [t["name"] for t in current.get("tags", [])] == ["second"]

    wait_until(retagged, window, f"{dag_id}'s change in the API before the listing")

    window = _window(metadata, refresh_interval)
    s3_client.delete_object(Bucket=bucket["name"], Key=f"{bucket['prefix']}{dag_id}.py")

    def gone() -> bool:
        current = api.dag(dag_id)
        return current is None or bool(current.get("is_stale"))

    wait_until(gone, window, f"{dag_id} deactivated before the listing")


def test_no_parse_request_is_left_unclaimed(metadata) -> None:
    """The DAG processor claims every row the sidecar wrote (nothing piles up)."""

    def drained() -> bool:
        with metadata.connect() as conn:
            return not conn.execute(
                sa.text("SELECT count(*) FROM dag_priority_parsing_request")
            ).scalar_one()

    wait_until(drained, 60, "the parse requests claimed", 0.5)
