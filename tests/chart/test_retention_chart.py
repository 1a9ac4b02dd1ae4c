"""Metadata retention: a CronJob running `airflow db clean` through `airflow-platform ops
retention`, straight to the database, never overlapping itself."""

from __future__ import annotations

import pytest

from .conftest import HelmError, env_of

pytestmark = pytest.mark.chart

ON = {"retention": {"enabled": True}}


def _cronjob(rendering):
    return rendering.one("CronJob", "retention")


def _container(cronjob):
    [container] = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    return container


def test_off_by_default(default) -> None:
    assert default.all("CronJob") == []


def test_defaults_keep_sixty_days_without_archive_and_never_overlap(render) -> None:
    cronjob = _cronjob(render(ON))
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert cronjob["spec"]["schedule"] == "0 3 * * *"
    args = _container(cronjob)["args"]
    assert args[:2] == ["ops", "retention"]
    assert args[args.index("--retention-days") + 1] == "60"
    assert args[args.index("--lock-timeout") + 1] == "10"
    assert "--skip-archive" in args and "--dry-run" not in args and "--tables" not in args


def test_every_option_reaches_the_command(render) -> None:
    values = {
        "retention": {
            "enabled": True,
            "retentionDays": 365,
            "tables": ["log", "xcom"],
            "skipArchive": False,
            "dropArchives": True,
            "dryRun": True,
            "lockTimeoutSeconds": 3,
            "statementTimeoutSeconds": 120,
            "schedule": "30 2 * * SUN",
        }
    }
    cronjob = _cronjob(render(values))
    args = _container(cronjob)["args"]
    assert args[args.index("--retention-days") + 1] == "365"
    assert args[args.index("--tables") + 1] == "log,xcom"
    assert args[args.index("--statement-timeout") + 1] == "120"
    assert {"--keep-archive", "--drop-archives", "--dry-run"} <= set(args)
    assert cronjob["spec"]["schedule"] == "30 2 * * SUN"


def test_it_connects_directly_with_the_database_secret_only(render) -> None:
    values = {
        **ON,
        "pgbouncer": {
            "enabled": True,
            "configSecret": "pgbouncer-config",
            "connectionSecret": {"secretName": "pgbouncer-connection"},
        },
    }
    env = env_of(_container(_cronjob(render(values))))
    ref = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]["valueFrom"]["secretKeyRef"]
    assert ref["name"] == "airflow-database", "never through PgBouncer"
    for key in (
        "AIRFLOW__CORE__FERNET_KEY",
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__API__SECRET_KEY",
    ):
        assert key not in env


def test_its_network_policy_allows_dns_and_the_database_only(render) -> None:
    [policy] = [
        p
        for p in render(ON).all("NetworkPolicy")
        if p["metadata"]["labels"]["app.kubernetes.io/component"] == "retention"
    ]
    assert policy["spec"]["ingress"] == []
    ports = [port["port"] for rule in policy["spec"]["egress"] for port in rule["ports"]]
    assert sorted(ports) == [53, 53, 5432]


def test_hibernation_suspends_it(render) -> None:
    assert _cronjob(render({**ON, "hibernate": True}))["spec"]["suspend"] is True


@pytest.mark.parametrize(
    ("retention", "pointer"),
    [
        ({"retentionDays": 29}, "/retention/retentionDays"),
        ({"retentionDays": 731}, "/retention/retentionDays"),
        ({"tables": ["log; DROP TABLE dag"]}, "/retention/tables/0"),
        ({"schedule": "daily"}, "/retention/schedule"),
        ({"lockTimeoutSeconds": 0}, "/retention/lockTimeoutSeconds"),
    ],
)
def test_the_schema_refuses_out_of_range_values(render, retention, pointer) -> None:
    with pytest.raises(HelmError) as refused:
        render({"retention": {"enabled": True, **retention}})
    assert f"at '{pointer}'" in refused.value.stderr
