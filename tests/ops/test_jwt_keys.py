"""`airflow-platform ops jwt`: keys and the JWKS of the chart's secrets.jwtSigning mode. Each
bad input is refused with a message naming the fix, and nothing is written."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from airflow_platform.cli import app
from airflow_platform.ops import jwt_keys
from airflow_platform.ops.errors import OpsError

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    done = runner.invoke(app, ["ops", "jwt", *args])
    return done.exit_code, done.output


def test_new_key_is_private_to_its_owner_and_prints_the_kid_airflow_signs_with(tmp_path) -> None:
    from airflow.api_fastapi.auth.tokens import key_to_jwk_dict

    code, out = run("new-key", "--out", str(tmp_path / "k.pem"))
    assert code == 0, out
    assert stat.S_IMODE((tmp_path / "k.pem").stat().st_mode) == 0o600
    key = serialization.load_pem_private_key((tmp_path / "k.pem").read_bytes(), password=None)
    assert out.strip() == key_to_jwk_dict(key)["kid"]  # what Airflow's JWTGenerator writes


def test_new_key_never_overwrites(tmp_path) -> None:
    (tmp_path / "k.pem").write_text("precious")
    code, out = run("new-key", "--out", str(tmp_path / "k.pem"))
    assert code == 2 and "a key is never overwritten" in out
    assert (tmp_path / "k.pem").read_text() == "precious"
    code, out = run("new-key", "--out", str(tmp_path / "x.pem"), "--type", "dsa")
    assert code == 2 and "ed25519, rsa" in out and not (tmp_path / "x.pem").exists()


def test_jwks_from_a_private_or_a_public_pem_is_the_same(tmp_path) -> None:
    key = jwt_keys.new_private_key("rsa")
    jwt_keys.write_private_key(tmp_path / "k.pem", key)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "k.pub").write_bytes(public)
    _, from_private = run("jwks", "--add", str(tmp_path / "k.pem"))
    _, from_public = run("jwks", "--add", str(tmp_path / "k.pub"))
    assert json.loads(from_private) == json.loads(from_public)
    (entry,) = json.loads(from_private)["keys"]
    assert entry["alg"] == "RS256" and entry["use"] == "sig" and "d" not in entry


def test_rotation_steps_add_then_remove(tmp_path) -> None:
    kids = []
    for name in ("a", "b"):
        code, out = run("new-key", "--out", str(tmp_path / f"{name}.pem"))
        kids.append(out.strip())
    run("jwks", "--add", str(tmp_path / "a.pem"), "--out", str(tmp_path / "1.json"))
    run("jwks", "--from", str(tmp_path / "1.json"), "--add", str(tmp_path / "b.pem"),
        "--add", str(tmp_path / "a.pem"), "--out", str(tmp_path / "2.json"))  # fmt: skip
    both = json.loads((tmp_path / "2.json").read_text())["keys"]
    assert [k["kid"] for k in both] == kids  # A kept once, B appended
    code, out = run("jwks", "--from", str(tmp_path / "2.json"), "--remove", kids[0])
    assert code == 0 and [k["kid"] for k in json.loads(out)["keys"]] == [kids[1]]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--remove", "nope"], "kid 'nope' is not in the JWKS"),
        (["--remove", "KID"], "would trust no key"),
        (["--kid", "x"], "--kid names the kid of exactly one --add key"),
        (["--add", "KEY", "--algorithm", "RS256"], "does not fit a OKP key"),
        (["--add", "JUNK"], "not an unencrypted PEM key"),
        (["--add", "MISSING"], "No such file"),
    ],
)
def test_bad_jwks_edits_are_refused(tmp_path, args, named) -> None:
    code, kid = run("new-key", "--out", str(tmp_path / "k.pem"))
    run("jwks", "--add", str(tmp_path / "k.pem"), "--out", str(tmp_path / "j.json"))
    (tmp_path / "junk.pem").write_text("-----BEGIN PRIVATE KEY-----\nnope\n")
    swap = {"KID": kid.strip(), "KEY": str(tmp_path / "k.pem"),
            "JUNK": str(tmp_path / "junk.pem"), "MISSING": str(tmp_path / "none.pem")}  # fmt: skip
    args = [swap.get(a, a) for a in args]
    code, out = run("jwks", "--from", str(tmp_path / "j.json"), *args, "--out",
                    str(tmp_path / "out.json"))  # fmt: skip
    assert code == 2 and named in out, out
    assert not (tmp_path / "out.json").exists()


def test_a_document_that_is_not_a_jwks_is_refused(tmp_path: Path) -> None:
    for text, named in (("{", "not JSON"), ('{"keys": {}}', "not a JWKS"),
                        ('{"keys": [{"kty": "OKP"}]}', "every key needs a kid")):  # fmt: skip
        (tmp_path / "j.json").write_text(text)
        with pytest.raises(OpsError, match=named):
            jwt_keys.read_jwks(tmp_path / "j.json")
