"""PgBouncer without a hand-written configuration: the chart writes pgbouncer.ini from the
environment class, and the credentials reach PgBouncer at pod start from the database Secret."""

from __future__ import annotations

import configparser
import re

import pytest

from .conftest import CHART, HelmError, container, env_of, pod_spec

pytestmark = pytest.mark.chart

ON = {
    "pgbouncer": {"enabled": True, "connectionSecret": {"secretName": "airflow-database-pgbouncer"}}
}
# environmentClass -> (default_pool_size, max_client_conn), as the chart README lists them.
POOLS = {
    "mw1.micro": (10, 200),
    "mw1.small": (20, 500),
    "mw1.medium": (40, 1000),
    "mw1.large": (80, 2000),
    "mw1.xlarge": (120, 3000),
    "mw1.2xlarge": (200, 5000),
}


def _ini(rendering) -> configparser.SectionProxy:
    config = configparser.ConfigParser(interpolation=None)
    config.read_string(rendering.one("ConfigMap", "pgbouncer")["data"]["pgbouncer.ini"])
    assert config.sections() == ["pgbouncer"], "[databases] is written at pod start"
    return config["pgbouncer"]


@pytest.mark.parametrize("env_class", sorted(POOLS))
def test_pool_sizes_follow_the_environment_class(render, env_class) -> None:
    extra = (
        {"scheduler": {"replicas": 1}, "apiServer": {"minReplicas": 1}}
        if env_class == "mw1.micro"
        else {}
    )
    ini = _ini(render({**ON, "environmentClass": env_class, **extra}))
    pool, clients = POOLS[env_class]
    assert (int(ini["default_pool_size"]), int(ini["max_client_conn"])) == (pool, clients)
    assert int(ini["max_db_connections"]) == pool + max(1, pool // 4)
    assert ini["pool_mode"] == "transaction"


def test_the_readme_lists_the_same_pool_sizes() -> None:
    readme = (CHART / "README.md").read_text()
    row = next(
        line for line in readme.splitlines() if line.startswith("| `pgbouncer.defaultPoolSize`")
    )
    for env_class, (pool, _) in POOLS.items():
        assert re.search(rf"{env_class.removeprefix('mw1.')} {pool}\b", row), env_class


def test_explicit_sizes_and_tls_mode_win(render) -> None:
    values = {
        "pgbouncer": {
            **ON["pgbouncer"],
            "defaultPoolSize": 33,
            "maxClientConn": 777,
            "serverTlsSslmode": "verify-full",
        }
    }
    ini = _ini(render(values))
    assert (ini["default_pool_size"], ini["max_client_conn"]) == ("33", "777")
    assert ini["server_tls_sslmode"] == "verify-full"


def test_credentials_come_from_the_database_secret_at_start_never_rendered(render) -> None:
    rendering = render(ON)
    deployment = rendering.one("Deployment", "pgbouncer")
    init = container(deployment, "pgbouncer-files")
    ref = env_of(init)["AIRFLOW_PLATFORM_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "airflow-database", "key": "connection"}
    assert init["command"][:3] == ["airflow-platform", "ops", "pgbouncer-files"]
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    assert volumes["config"]["emptyDir"]["medium"] == "Memory"
    assert container(deployment, "pgbouncer")["command"] == [
        "pgbouncer",
        "/etc/pgbouncer/pgbouncer.ini",
    ]
    assert "password" not in rendering.one("ConfigMap", "pgbouncer")["data"]["pgbouncer.ini"]
    # A changed configuration rolls the pods.
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert len(annotations["airflow-platform.io/pgbouncer-config-checksum"]) == 64


def test_an_own_config_secret_still_works(render) -> None:
    rendering = render({"pgbouncer": {**ON["pgbouncer"], "configSecret": "my-pgbouncer"}})
    assert rendering.all("ConfigMap", "pgbouncer") == []
    volumes = {v["name"]: v for v in pod_spec(rendering.one("Deployment", "pgbouncer"))["volumes"]}
    assert volumes["config"] == {"name": "config", "secret": {"secretName": "my-pgbouncer"}}
    assert "initContainers" not in pod_spec(rendering.one("Deployment", "pgbouncer"))


@pytest.mark.parametrize(
    ("pgbouncer", "pointer"),
    [
        ({"defaultPoolSize": 0}, "/pgbouncer/defaultPoolSize"),
        ({"maxClientConn": 5}, "/pgbouncer/maxClientConn"),
        ({"serverTlsSslmode": "allow-anything"}, "/pgbouncer/serverTlsSslmode"),
    ],
)
def test_the_schema_refuses_bad_sizes(render, pgbouncer, pointer) -> None:
    with pytest.raises(HelmError) as refused:
        render({"pgbouncer": {**ON["pgbouncer"], **pgbouncer}})
    assert f"at '{pointer}'" in refused.value.stderr
