"""The SimpleAuthManager password file, copied from a Secret into a writable place.

Airflow opens `[core] simple_auth_manager_passwords_file` for writing (mode "a+" at start,
"r+" at every login) and, for each configured user missing from it, generates a password,
writes it back and prints it to the log. A Secret volume is read-only, so the chart copies
the Secret's file into an emptyDir first; the copy must name every configured user, so that
Airflow never generates nor prints a password and every replica has the same ones.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


class PasswordsFileError(ValueError):
    """The passwords Secret does not fit the configured users; the message says how."""


def configured_users(users: str) -> list[str]:
    """User names of `[core] simple_auth_manager_users` ("name:role[:teams],...")."""
    return [entry.split(":")[0].strip() for entry in users.split(",") if entry.strip()]


def check_passwords(text: str, users: list[str], source: str) -> dict[str, str]:
    try:
        passwords = json.loads(text)
    except ValueError as exc:
        raise PasswordsFileError(
            f'{source} is not JSON ({exc}): it must be an object {{"user": "password"}}'
        ) from exc
    if not isinstance(passwords, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in passwords.items()
    ):
        raise PasswordsFileError(
            f"{source} must be a JSON object mapping each user name to a non-empty password"
        )
    missing = [u for u in users if u not in passwords]
    if missing:
        raise PasswordsFileError(
            f"{source} has no password for {', '.join(missing)} (auth.simple.users): add them "
            "to the Secret named by auth.simple.passwordsSecret; Airflow would otherwise "
            "generate one per replica and print it to the log"
        )
    return passwords


def install(source: Path, target: Path, users: str) -> list[str]:
    """Check `source` against `users` and copy it to `target` (owner-only). Returns users."""
    names = configured_users(users)
    passwords = check_passwords(source.read_text(), names, str(source))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(passwords) + "\n")
    os.replace(tmp, target)
    return names
