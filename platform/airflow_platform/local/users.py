"""The local OpenID Connect provider's users: one per MWAA role, each in the group that the
local values map to that role; their passwords are generated once into secrets.json."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class LocalUser:
    name: str
    role: str
    groups: tuple[str, ...]


# One user per role; the group names are mapped to roles in values-local.yaml.
USERS = (
    LocalUser("admin", "Admin", ("airflow-admins",)),
    LocalUser("op", "Op", ("airflow-ops",)),
    LocalUser("user", "User", ("airflow-users",)),
    LocalUser("viewer", "Viewer", ("airflow-viewers",)),
)


def password_key(user: str) -> str:
    """The key of a seeded user's password in the state's secrets.json."""
    return f"oidc-password-{user}"


def generated_secrets() -> dict[str, Callable[[], str]]:
    """What StateDir.secrets() generates once for the provider."""
    return {
        "oidc-client-secret": lambda: secrets.token_urlsafe(24),
        "oidc-other-client-secret": lambda: secrets.token_urlsafe(24),
        **{password_key(u.name): lambda: secrets.token_urlsafe(12) for u in USERS},
    }


def admin_user(role_mapping: dict[str, list[str]]) -> str:
    """The seeded user whose group the rendered AUTH_ROLES_MAPPING maps to Admin."""
    for user in USERS:
        if any("Admin" in role_mapping.get(group, []) for group in user.groups):
            return user.name
    raise LookupError(
        "no local user is in a group that auth.oidc.roleMapping maps to Admin: map one of "
        + ", ".join(g for u in USERS for g in u.groups)
        + " to [Admin]"
    )
