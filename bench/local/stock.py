"""The fan-out baseline: Airflow's stock configuration on the same topology.

stock-values.yaml sets back every scheduling, Celery and parsing key that the chart or the
local values tune, through airflowConfigurationOptions. Two such keys are refused there
(the platform owns them), so the bench sets them as environment overrides of every
component instead. `differences()` renders the chart both ways and lists, from the
rendering, every Airflow option that differs, and every option of those sections that
still differs from Airflow's default in the baseline, with the reason.
"""

from __future__ import annotations

from pathlib import Path

from airflow_platform.local.platform import CHART, LOCAL_VALUES, REPO
from airflow_platform.local.rendering import Rendering, find_helm, helm_template

STOCK_VALUES = Path(__file__).resolve().with_name("stock-values.yaml")
COMPONENTS = ("scheduler", "dag-processor", "triggerer", "worker", "api-server", "execution-api")
# Refused in airflowConfigurationOptions (the platform owns them); set here for the baseline.
STOCK_ENV = {
    # Airflow's default: no extra Celery configuration (the platform imports its drain hook).
    "AIRFLOW__CELERY__EXTRA_CELERY_CONFIG": "{}",
    # What Airflow sets when the option is absent (default_celery.py) for an SQS broker.
    "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "86400",
}
STOCK_OVERRIDES = {component: dict(STOCK_ENV) for component in COMPONENTS}
SECTIONS = ("core", "scheduler", "celery", "celery_broker_transport_options", "dag_processor",
            "workers")  # fmt: skip
# Options of those sections that stay as the platform sets them in the baseline, and why.
KEPT = {
    "celery.worker_concurrency": "the topology: tasks per worker of the environment class",
    "core.load_examples": "the same DAGs in both: Airflow's example DAGs are not loaded",
    "scheduler.enable_health_check": "the health endpoint the runner probes; not a tuning",
    "celery.operation_timeout": "with Airflow's 1.0 s the stock fan-out's first task failed "
    "on this loaded machine (a send to SQS slower than the timeout fails)",
    "core.executor": "the topology: CeleryExecutor on SQS",
    "core.dags_folder": "where dagsync publishes",
    "core.plugins_folder": "where dagsync publishes",
    "core.execution_api_server_url": "the topology: the execution API server",
    "core.hostname_callable": "the local runner names each process",
    "celery.broker_url": "the topology: the SQS queue",
    "celery.result_backend": "the topology: the result backend",
    "celery.worker_enable_remote_control": "SQS has no remote control",
    "celery_broker_transport_options.predefined_queues": "the topology: the SQS queue",
    "celery_broker_transport_options.region": "the topology: the SQS region",
    "celery_broker_transport_options.is_secure": "moto speaks plain HTTP",
    "scheduler.scheduler_health_check_server_port": "a port the runner picks",
    "core.auth_manager": "sign-in (FAB with OpenID Connect); not on the task path",
    "celery_broker_transport_options.polling_interval": "stock: Airflow leaves it unset and "
    "kombu's SQS transport polls every 1 s",
    "celery_broker_transport_options.visibility_timeout": "stock: Airflow sets 86400 when it "
    "is unset (default_celery.py)",
}


def _options(values_files: list[Path], component: str) -> dict[str, str]:
    """section.key -> value of the component's rendered Airflow environment."""
    runtime = {
        "celery.sqsQueueUrl": "http://127.0.0.1:1/123456789012/q",
        "dags.s3.bucket": "bench-bucket",
        "dags.sync.eventQueueUrl": "http://127.0.0.1:1/123456789012/e",
        "secretsBackend.vault.url": "http://127.0.0.1:1",
        "auth.oidc.issuerUrl": "http://127.0.0.1:1/oidc",
    }
    text = helm_template(find_helm(REPO), CHART, [LOCAL_VALUES, *values_files], runtime)
    workload = Rendering.parse(text).workload(component)
    assert workload is not None, component
    container = workload.containers[0]
    out = {}
    for item in container.env:
        name = item["name"]
        if name.startswith("AIRFLOW__") and "value" in item:
            section, _, key = name.removeprefix("AIRFLOW__").lower().partition("__")
            out[f"{section}.{key}"] = str(item["value"])
    return out


def _default(option: str) -> str | None:
    from airflow.configuration import conf

    section, key = option.split(".", 1)
    value = conf.get_default_value(section, key)
    return None if value is None else str(value)


def differences(component: str = "worker") -> list[str]:
    """Lines saying what differs between the platform's and the baseline's configuration."""
    ours = _options([], component)
    stock = _options([STOCK_VALUES], component)
    for name, value in STOCK_ENV.items():
        section, _, key = name.removeprefix("AIRFLOW__").lower().partition("__")
        stock[f"{section}.{key}"] = value
    lines = [f"platform -> stock ({component} environment; stock = Airflow 3.3.2's default):"]
    by_env = {name.removeprefix("AIRFLOW__").lower().replace("__", ".", 1) for name in STOCK_ENV}
    for option in sorted(set(ours) | set(stock)):
        if ours.get(option) != stock.get(option):
            how = "env override" if option in by_env else STOCK_VALUES.name
            lines.append(f"  {option}: {ours.get(option)!r} -> {stock.get(option)!r}  ({how})")
    lines.append("the same in both, unlike Airflow's default value:")
    for option in sorted(stock):
        if not option.startswith(tuple(s + "." for s in SECTIONS)):
            continue
        default = _default(option)
        if default is not None and _same(stock[option], default):
            continue
        why = KEPT.get(option, "NOT RESET: add it to stock-values.yaml")
        lines.append(f"  {option} = {stock[option]!r} (default {default!r}): {why}")
    return lines


def _same(a: str, b: str) -> bool:
    try:
        return float(a) == float(b)
    except ValueError:
        return a.strip().lower() == b.strip().lower()


if __name__ == "__main__":
    print("\n".join(differences()))
