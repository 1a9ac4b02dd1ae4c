"""`ops jwt new-key` and `ops jwt jwks`: the keys of the chart's `secrets.jwtSigning` mode and
the JWKS its verifiers trust (docs/runbook.md rotates them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from airflow_platform.ops.errors import OpsError
from airflow_platform.ops.options import fail

app = typer.Typer()  # its commands join `ops` (see ops/cli.py)
jwt_app = typer.Typer(help="Token signing keys and the JWKS of trusted public keys.",
                      no_args_is_help=True)  # fmt: skip
app.add_typer(jwt_app, name="jwt")


@jwt_app.command("new-key")
def new_key(
    out: Annotated[Path, typer.Option("--out", help="Where the private key (PEM) goes; 0600.")],
    key_type: Annotated[str, typer.Option("--type", help="ed25519 or rsa (3072 bits).")] = (
        "ed25519"
    ),
) -> None:
    """Make a private key and print its kid (what the signers will write into tokens)."""
    from airflow_platform.ops import jwt_keys

    try:
        key = jwt_keys.new_private_key(key_type)
        jwt_keys.write_private_key(out, key)
        typer.echo(jwt_keys.public_jwk(key)["kid"])
    except OpsError as exc:
        raise fail(exc) from None


@jwt_app.command("jwks")
def jwks(
    source: Annotated[
        Path | None, typer.Option("--from", help="The JWKS to start from (else an empty one).")
    ] = None,
    add: Annotated[
        list[Path] | None, typer.Option("--add", help="A PEM key (private or public) to trust.")
    ] = None,
    remove: Annotated[
        list[str] | None, typer.Option("--remove", help="A kid to stop trusting.")
    ] = None,
    kid: Annotated[
        str, typer.Option("--kid", help="The kid of the one --add key, when the chart sets one.")
    ] = "",
    algorithm: Annotated[
        str, typer.Option("--algorithm", help='secrets.jwtSigning.algorithm; "" = from the key.')
    ] = "",
    out: Annotated[Path | None, typer.Option("--out", help="Write here instead of stdout.")] = None,
) -> None:
    """Print the JWKS with keys added (--add) or dropped (--remove), one kid per key."""
    from airflow_platform.ops import jwt_keys

    try:
        if kid and len(add or []) != 1:
            raise OpsError("--kid names the kid of exactly one --add key")
        current = jwt_keys.read_jwks(source) if source else None
        added = [jwt_keys.public_jwk(jwt_keys.load_key(p), kid, algorithm) for p in add or []]
        document = jwt_keys.edit_jwks(current, added, list(remove or []))
    except OpsError as exc:
        raise fail(exc) from None
    text = json.dumps(document, indent=2) + "\n"
    if out:
        out.write_text(text)
    else:
        typer.echo(text, nl=False)
