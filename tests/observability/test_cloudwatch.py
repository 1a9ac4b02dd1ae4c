"""CloudWatch for users without Prometheus: the log groups (retention, KMS) and the alarms
are created through the real AWS APIs of a moto server and read back; the CloudWatch
agent's relabelling is run by a real Prometheus and must yield the documented names."""

from __future__ import annotations

import json
import re
import string
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
import yaml

from .prom import Prometheus, wait_for_series

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CLOUDWATCH = ROOT / "manifests" / "cloudwatch"
ALARMS = sorted((CLOUDWATCH / "alarms").glob("*.json"))
README = ROOT / "manifests" / "README.md"
TOPIC = "arn:aws:sns:us-east-1:123456789012:airflow-alarms"


def documented_names() -> dict[str, tuple[str, str]]:
    """manifests/README.md's table: Prometheus name -> (CloudWatch name, Function)."""
    rows = re.findall(
        r"^\| `([a-z_]+)` \| `([A-Za-z]+)` \| ([A-Za-z ]+) \|", README.read_text(), re.M
    )
    assert rows, "the metric names table is missing from manifests/README.md"
    return {prom: (cw, fn) for prom, cw, fn in rows}


def alarm_input(path: Path, environment: str = "analytics") -> dict:
    text = string.Template(path.read_text()).substitute(
        ENVIRONMENT=environment, ALARM_TOPIC_ARN=TOPIC
    )
    return json.loads(text)


@pytest.fixture
def cloudwatch(aws_env: str):
    return boto3.client("cloudwatch")


@pytest.mark.parametrize("path", ALARMS, ids=[p.stem for p in ALARMS])
def test_alarm_is_accepted_by_the_cloudwatch_api_and_reads_back(cloudwatch, path: Path) -> None:
    alarm = alarm_input(path)
    cloudwatch.put_metric_alarm(**alarm)  # the same input as aws cloudwatch put-metric-alarm
    (stored,) = cloudwatch.describe_alarms(AlarmNames=[alarm["AlarmName"]])["MetricAlarms"]
    for key in ("Threshold", "ComparisonOperator", "EvaluationPeriods", "TreatMissingData"):
        assert stored[key] == alarm[key], key
    assert stored["AlarmActions"] == [TOPIC]
    metrics = (
        [(alarm["MetricName"], alarm["Dimensions"])]
        if "MetricName" in alarm
        else [
            (m["MetricStat"]["Metric"]["MetricName"], m["MetricStat"]["Metric"]["Dimensions"])
            for m in alarm["Metrics"]
            if "MetricStat" in m
        ]
    )
    if "MetricName" in alarm:
        assert stored["MetricName"] == alarm["MetricName"]
        assert stored["Dimensions"] == alarm["Dimensions"]
    else:
        assert [m["Id"] for m in stored["Metrics"]] == [m["Id"] for m in alarm["Metrics"]]
    # Every metric an alarm watches is one the agent publishes, with its Function.
    published = {cw: fn for cw, fn in documented_names().values()}
    for name, dimensions in metrics:
        assert name in published, f"{path.name}: {name} is not in the published names"
        dims = {d["Name"]: d["Value"] for d in dimensions}
        assert dims == {"Environment": "analytics", "Function": published[name]}


def test_the_canary_alarm_treats_a_missing_result_as_unhealthy() -> None:
    """The exporter stops serving the canary's gauge 15 minutes after its last result, so a
    canary that stopped reporting is missing data, which must alarm."""
    (alarm,) = [a for a in map(alarm_input, ALARMS) if a.get("MetricName") == "EnvironmentHealthy"]
    assert alarm["TreatMissingData"] == "breaching"
    assert (alarm["Statistic"], alarm["ComparisonOperator"], alarm["Threshold"]) == (
        "Maximum",
        "LessThanThreshold",
        1,
    )


def test_alarm_names_are_unique_per_environment() -> None:
    names = [alarm_input(p)["AlarmName"] for p in ALARMS]
    assert len(set(names)) == len(names)
    assert all(n.startswith("airflow-analytics-") for n in names)


@pytest.fixture
def cloudformation(aws_env: str):
    return boto3.client("cloudformation")


TEMPLATE = CLOUDWATCH / "log-groups.yaml"
TYPES = ("DAGProcessing", "Scheduler", "Task", "WebServer", "Worker")


def test_the_log_group_template_passes_cfn_lint() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), str(TEMPLATE)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_log_groups_are_created_with_a_retention_per_type(cloudformation) -> None:
    cloudformation.create_stack(
        StackName="airflow-retention-logs",
        TemplateBody=TEMPLATE.read_text(),
        Parameters=[
            {"ParameterKey": "EnvironmentName", "ParameterValue": "retention"},
            {"ParameterKey": "TaskRetentionDays", "ParameterValue": "365"},
        ],
    )
    logs = boto3.client("logs")
    found = logs.describe_log_groups(logGroupNamePrefix="airflow-retention-")["logGroups"]
    groups = {g["logGroupName"]: g for g in found}
    assert set(groups) == {f"airflow-retention-{t}" for t in TYPES}
    assert groups["airflow-retention-Task"]["retentionInDays"] == 365
    assert groups["airflow-retention-Worker"]["retentionInDays"] == 30


def _template() -> dict:
    class Loader(yaml.SafeLoader):
        pass

    # CloudFormation's short-form functions (!Ref, !If, ...) as plain data.
    Loader.add_multi_constructor(
        "!",
        lambda loader, tag, node: (
            {tag: loader.construct_sequence(node)}
            if isinstance(node, yaml.SequenceNode)
            else {tag: loader.construct_scalar(node)}
        ),
    )
    return yaml.load(TEMPLATE.read_text(), Loader=Loader)


def test_every_log_group_uses_the_kms_key_when_one_is_given() -> None:
    resources = _template()["Resources"]
    assert len(resources) == len(TYPES)
    for resource in resources.values():
        kms = resource["Properties"]["KmsKeyId"]
        assert kms == {"If": ["HasKmsKey", {"Ref": "KmsKeyArn"}, {"Ref": "AWS::NoValue"}]}
        assert resource["DeletionPolicy"] == "Retain"  # deleting a stack keeps the logs


def test_every_retention_choice_is_accepted_by_the_logs_api(aws_env) -> None:
    logs = boto3.client("logs")
    logs.create_log_group(logGroupName="airflow-choices-Task")
    params = _template()["Parameters"]
    for t in TYPES:
        choices = params[f"{t}RetentionDays"]["AllowedValues"]
        for days in choices:
            logs.put_retention_policy(logGroupName="airflow-choices-Task", retentionInDays=days)
        # Anything else is refused by CloudFormation naming the parameter (AllowedValues).
        assert 45 not in choices and 0 not in choices


def agent_scrape_config(target: str, job: str, meta: dict[str, str]) -> dict:
    """The agent's scrape job, with Kubernetes discovery replaced by one target carrying
    the __meta_kubernetes_* labels discovery would give it (Debian's Prometheus is built
    without Kubernetes discovery); its relabelling is kept as written."""
    cm = yaml.safe_load((CLOUDWATCH / "cloudwatch-agent.yaml").read_text())
    prom = yaml.safe_load(cm["data"]["prometheus.yaml"])
    (scrape,) = [j for j in prom["scrape_configs"] if j["job_name"] == job]
    del scrape["kubernetes_sd_configs"]
    scrape["static_configs"] = [{"targets": [target], "labels": meta}]
    scrape["scrape_interval"] = "1s"
    scrape["scrape_timeout"] = "1s"
    return {"global": {"scrape_interval": "1s"}, "scrape_configs": [scrape]}


# What a statsd_exporter with the chart's mapping serves for a scheduler and DAG processor.
EXPORTER_BODY = b"""# TYPE airflow_scheduler_heartbeat counter
airflow_scheduler_heartbeat 12
# TYPE airflow_executor_queued_tasks gauge
airflow_executor_queued_tasks 3
# TYPE airflow_dag_processing_import_errors gauge
airflow_dag_processing_import_errors 1
# TYPE airflow_pool_open_slots gauge
airflow_pool_open_slots{pool="default_pool"} 5
# TYPE airflow_environment_healthy gauge
airflow_environment_healthy 0
# TYPE airflow_canary_schedule_to_finish_seconds histogram
airflow_canary_schedule_to_finish_seconds_bucket{le="+Inf"} 3
airflow_canary_schedule_to_finish_seconds_sum 41.5
airflow_canary_schedule_to_finish_seconds_count 3
"""


class _Exporter(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(EXPORTER_BODY)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_the_agent_config_publishes_the_documented_names_and_dimensions(tmp_path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Exporter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        meta = {
            "__meta_kubernetes_pod_label_app_kubernetes_io_part_of": "airflow-platform",
            "__meta_kubernetes_pod_label_app_kubernetes_io_component": "statsd-exporter",
            "__meta_kubernetes_pod_container_port_name": "metrics",
            "__meta_kubernetes_pod_annotation_airflow_platform_io_environment": "analytics",
            "__meta_kubernetes_pod_name": "exporter-0",
        }
        config = agent_scrape_config(f"127.0.0.1:{server.server_port}", "airflow-statsd", meta)
        with Prometheus(tmp_path, config) as prom:
            (beat,) = wait_for_series(prom, "SchedulerHeartbeat")
            assert beat["metric"]["Environment"] == "analytics"
            assert beat["metric"]["Function"] == "Scheduler"
            assert beat["value"][1] == "12"
            (queued,) = prom.query("QueuedTasks")
            assert queued["metric"]["Function"] == "Executor"
            (healthy,) = prom.query("EnvironmentHealthy")
            assert healthy["metric"]["Function"] == "Canary"
            assert healthy["value"][1] == "0"
            scraped = {r["metric"]["__name__"] for r in prom.query('{job="airflow-statsd"}')}
    finally:
        server.shutdown()
        thread.join(timeout=5)
    kept = {n for n in scraped if n != "up" and not n.startswith("scrape_")}
    # Only documented names leave the agent (the pool gauge and the canary's histogram, which
    # the agent would drop as a histogram anyway, are not among them).
    assert kept == {"SchedulerHeartbeat", "QueuedTasks", "ImportErrors", "EnvironmentHealthy"}


def test_every_documented_name_is_produced_by_the_mapping_or_dagsync() -> None:
    from .metric_names import MAPPING, emitted_statsd_names, produced_series
    from .statsd_mapping import Mapper

    produced = set(produced_series(Mapper.from_file(MAPPING), emitted_statsd_names()))
    dagsync = {"dagsync_lag_seconds", "dagsync_refused"}
    missing = {p for p in documented_names() if p not in produced and p not in dagsync}
    assert not missing, missing
