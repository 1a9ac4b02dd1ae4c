"""`airflow-platform env render|import|validate` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from env_examples import EXAMPLES, spec_data

CLI = str(Path(sys.executable).parent / "airflow-platform")


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, "env", *args], input=stdin, capture_output=True, text=True, timeout=120
    )


def test_render_writes_values_to_stdout_and_summary_to_stderr() -> None:
    out = _run("render", str(EXAMPLES / "ml-medium.yaml"))
    assert out.returncode == 0, out.stderr
    values = yaml.safe_load(out.stdout)
    assert values["environmentName"] == "ml-features"
    assert values["image"] == {
        "repository": "123456789012.dkr.ecr.eu-central-1.amazonaws.com/airflow-platform",
        "tag": "0.1.0",
    }
    assert values["dagProcessor"]["serviceAccount"]["roleArn"].endswith("ml-airflow-dag-processor")
    assert "rendered ml-features: mw1.medium" in out.stderr
    assert "-n ml-airflow" in out.stderr


def test_render_refuses_a_bad_spec_naming_the_field(tmp_path: Path) -> None:
    data = spec_data("etl-small") | {"MaxWorkers": 40}
    data["AirflowConfigurationOptions"]["core.fernet_key"] = "abc"
    spec = tmp_path / "env.yaml"
    spec.write_text(yaml.safe_dump(data))
    out = _run("render", str(spec))
    assert out.returncode == 2
    assert out.stdout == ""
    assert "MaxWorkers: mw1.small allows 1 to 25 workers (got 40)" in out.stderr
    assert "AirflowConfigurationOptions['core.fernet_key']" in out.stderr
    assert "Eks.Secrets.FernetKey" in out.stderr  # where the fernet key goes instead


def test_render_refuses_an_incomplete_spec_unless_allowed(tmp_path: Path) -> None:
    data = spec_data("sandbox-micro")
    del data["Eks"]["CeleryQueueUrl"]
    spec = tmp_path / "env.yaml"
    spec.write_text(yaml.safe_dump(data))
    refused = _run("render", str(spec))
    assert refused.returncode == 2
    assert "Eks.CeleryQueueUrl: not set" in refused.stderr
    allowed = _run("render", "--allow-incomplete", str(spec))
    assert allowed.returncode == 0, allowed.stderr
    assert yaml.safe_load(allowed.stdout)["celery"]["sqsQueueUrl"] == ""
    assert "still to fill in" in allowed.stderr


def test_validate_reports_what_a_deploy_still_needs(tmp_path: Path) -> None:
    assert _run("validate", str(EXAMPLES / "reporting-2xlarge.yaml")).returncode == 0
    data = spec_data("reporting-2xlarge")
    del data["Eks"]["Secrets"]
    spec = tmp_path / "env.yaml"
    spec.write_text(yaml.safe_dump(data))
    out = _run("validate", str(spec))
    assert out.returncode == 1
    assert "Eks.Secrets.JwtSecret" in out.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("Name: [unclosed\n")
    out = _run("validate", str(bad))
    assert out.returncode == 2 and "not valid YAML" in out.stderr


def test_import_from_stdin_with_an_eks_overlay(tmp_path: Path) -> None:
    raw = (EXAMPLES / "mwaa" / "analytics-prod.get-environment.json").read_text()
    spec = tmp_path / "analytics-prod.yaml"
    out = _run(
        "import",
        "-",
        "-o",
        str(spec),
        "--eks",
        str(EXAMPLES / "eks-overlay.example.yaml"),
        stdin=raw,
    )
    assert out.returncode == 0, out.stderr
    assert "NetworkConfiguration: VPC subnets and security groups" in out.stderr
    assert (
        "AirflowConfigurationOptions['metrics.statsd_on']: dropped: key 'metrics.statsd_on' is "
        "owned by the platform" in out.stderr
    )
    assert (
        "AirflowConfigurationOptions['secrets.backend']: dropped: key 'secrets.backend' is owned "
        "by the platform and cannot be set (the secrets backend is configured by the chart); "
        "remove it, and set secretsBackend" in " ".join(out.stderr.split())
    )
    assert "AirflowVersion: MWAA runs 2.10.3" in out.stderr
    assert "still to fill in" not in out.stderr
    imported = yaml.safe_load(spec.read_text())
    assert imported["Name"] == "analytics-prod"
    assert imported["Eks"]["CeleryQueueUrl"].endswith("analytics-prod-airflow-celery")
    rendered = subprocess.run(
        [CLI, "env", "render", str(spec)], capture_output=True, text=True, timeout=120
    )
    assert rendered.returncode == 0, rendered.stderr
    assert yaml.safe_load(rendered.stdout)["scheduler"]["replicas"] == 3


def test_import_without_overlay_lists_what_to_fill_in(tmp_path: Path) -> None:
    source = EXAMPLES / "mwaa" / "sandbox-micro.get-environment.json"
    out = _run("import", str(source))
    assert out.returncode == 0, out.stderr
    spec = yaml.safe_load(out.stdout)
    assert spec["Eks"] == {
        "Namespace": "sandbox",
        "Region": "eu-west-1",
        "ServiceAccountRoleArns": {},
        "Secrets": {},
        "Ingress": {"InboundCidrs": []},
        "Auth": {"Manager": "fab"},
        "RequirementsOnFailure": "fail",
    }
    assert "still to fill in (Eks section)" in out.stderr
    assert "Eks.DatabaseSecret" in out.stderr
    # MWAA has no identity provider of ours to import: sign-in is to be filled in, and a
    # PUBLIC_ONLY web server needs its certificate.
    assert "Eks.Auth.Oidc" in out.stderr
    mode = json.loads(source.read_text())["Environment"]["WebserverAccessMode"]
    assert ("Eks.Ingress.CertificateArn" in out.stderr) == (mode == "PUBLIC_ONLY")


def test_import_refuses_input_that_is_not_get_environment(tmp_path: Path) -> None:
    out = _run("import", "-", stdin="not json")
    assert out.returncode == 2 and "not JSON" in out.stderr
    out = _run("import", "-", stdin=json.dumps({"Environments": ["x"]}))
    assert out.returncode == 2 and "aws mwaa get-environment" in out.stderr
