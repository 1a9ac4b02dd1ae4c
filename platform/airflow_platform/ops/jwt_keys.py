"""Token signing keys for the chart's `secrets.jwtSigning` mode: a new private key, and the
JWKS of trusted public keys the verifiers read.

The key id of each JWKS entry is what Airflow's signers write into their tokens' header:
`[api_auth] jwt_kid` when set, else Airflow's own thumbprint of the key
(`key_to_jwk_dict`), computed here with the same function so the two cannot drift."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from airflow_platform.ops.errors import OpsError

KEY_TYPES = ("ed25519", "rsa")
# What Airflow guesses for each key type when [api_auth] jwt_algorithm is unset.
DEFAULT_ALGORITHM = {"OKP": "EdDSA", "RSA": "RS256"}
ALGORITHMS = {"OKP": ("EdDSA",), "RSA": ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")}


def new_private_key(key_type: str = "ed25519") -> ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey:
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    raise OpsError(f"key type {key_type!r}: use one of {', '.join(KEY_TYPES)}")


def private_pem(key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_private_key(path: Path, key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey) -> None:
    """Write the PEM readable by its owner only; never over an existing file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise OpsError(
            f"{path} exists: choose another --out (a key is never overwritten)"
        ) from None
    with os.fdopen(fd, "wb") as out:
        out.write(private_pem(key))


def load_key(path: Path) -> Any:
    """A private or public key from a PEM file (the public half is what the JWKS keeps)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise OpsError(f"{path}: {exc.strerror}") from None
    try:
        if b"PRIVATE KEY" in data:
            return serialization.load_pem_private_key(data, password=None)
        return serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise OpsError(f"{path}: not an unencrypted PEM key ({exc})") from None


def public_jwk(key: Any, kid: str = "", algorithm: str = "") -> dict[str, Any]:
    """The JWKS entry of a key, its kid as Airflow's signer computes it unless given."""
    from airflow.api_fastapi.auth.tokens import key_to_jwk_dict

    try:
        jwk = key_to_jwk_dict(key, kid or None)
    except ValueError:
        raise OpsError("only Ed25519 and RSA keys can sign Airflow's tokens") from None
    kty = jwk["kty"]
    if algorithm and algorithm not in ALGORITHMS[kty]:
        raise OpsError(
            f"algorithm {algorithm!r} does not fit a {kty} key: use one of "
            f"{', '.join(ALGORITHMS[kty])} (secrets.jwtSigning.algorithm)"
        )
    jwk.pop("key_ops", None)
    return {**jwk, "use": "sig", "alg": algorithm or DEFAULT_ALGORITHM[kty]}


def read_jwks(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise OpsError(f"{path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise OpsError(f"{path}: not JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise OpsError(f'{path}: not a JWKS (a JSON object with a "keys" list)')
    for entry in doc["keys"]:
        if not isinstance(entry, dict) or not entry.get("kid"):
            raise OpsError(f"{path}: every key needs a kid (Airflow finds keys by kid)")
    return doc


def edit_jwks(
    current: dict[str, Any] | None,
    add: list[dict[str, Any]],
    remove: list[str],
) -> dict[str, Any]:
    """The JWKS with `add` appended (a kid already there is kept as it is) and the kids in
    `remove` dropped. Refuses an unknown kid and an empty result."""
    keys = list((current or {"keys": []})["keys"])
    kids = [k["kid"] for k in keys]
    for kid in remove:
        if kid not in kids:
            raise OpsError(f"kid {kid!r} is not in the JWKS (it holds: {', '.join(kids) or '-'})")
    keys = [k for k in keys if k["kid"] not in remove]
    for jwk in add:
        if jwk["kid"] not in {k["kid"] for k in keys}:
            keys.append(jwk)
    if not keys:
        raise OpsError("the JWKS would trust no key: every token would be refused")
    return {"keys": keys}
