"""FAB's security manager for OpenID Connect sign-in, named by the chart's webserver_config.py.

FAB knows a handful of providers by name and reads everything else from the userinfo
endpoint with fixed claim names. Identity providers disagree on where groups live
(`groups`, `cognito:groups`, `roles`) and on the stable user name, so this manager takes
both from the claims the chart configures, and reads them first from the ID token that
authlib has already verified (signature from the provider's JWKS, issuer, audience,
nonce, expiry), asking the userinfo endpoint only for claims the ID token lacks.

Roles: the roles mapped from the user's groups (AUTH_ROLES_MAPPING); a user in no mapped
group gets OIDC_DEFAULT_ROLE only. With AUTH_ROLES_SYNC_AT_LOGIN they are recomputed at
every sign-in, so a user removed from a group loses its role at the next login.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.providers.fab.auth_manager.security_manager.override import (
    FabAirflowSecurityManagerOverride,
)
from flask import current_app

log = logging.getLogger(__name__)

DEFAULT_USERNAME_CLAIM = "preferred_username"
DEFAULT_GROUPS_CLAIM = "groups"
DEFAULT_ROLE = "Public"


def groups_of(claims: dict[str, Any], claim: str) -> list[str]:
    """A groups claim as a list of names: providers send a list, a string or nothing."""
    value = claims.get(claim)
    if value is None:
        return []
    if isinstance(value, str):
        return [g for g in value.replace(",", " ").split() if g]
    if isinstance(value, list | tuple):
        return [str(g) for g in value]
    return []


def user_info_from_claims(
    claims: dict[str, Any], username_claim: str, groups_claim: str
) -> dict[str, Any]:
    """The user FAB registers or updates, from verified claims; {} refuses the sign-in."""
    username = claims.get(username_claim)
    if not isinstance(username, str) or not username.strip():
        log.error(
            "OpenID Connect sign-in refused: the claim %r (auth.oidc.usernameClaim) is missing "
            "from the ID token and the userinfo response",
            username_claim,
        )
        return {}
    return {
        "username": username.strip(),
        "email": claims.get("email") or "",
        "first_name": claims.get("given_name") or claims.get("name") or "",
        "last_name": claims.get("family_name") or "",
        "role_keys": groups_of(claims, groups_claim),
    }


class OidcSecurityManager(FabAirflowSecurityManagerOverride):
    """Claims from the verified ID token (then userinfo); roles from the configured groups."""

    def get_oauth_user_info(self, provider: str, resp: dict[str, Any]) -> dict[str, Any]:
        config = current_app.config
        username_claim = config.get("OIDC_USERNAME_CLAIM", DEFAULT_USERNAME_CLAIM)
        groups_claim = config.get("OIDC_GROUPS_CLAIM", DEFAULT_GROUPS_CLAIM)
        # authlib puts the ID token's claims here only after verifying it.
        claims: dict[str, Any] = dict(resp.get("userinfo") or {})
        if not claims.get("sub"):
            log.error("OpenID Connect sign-in refused: no verified ID token in the response")
            return {}
        if username_claim not in claims or groups_claim not in claims:
            extra = dict(self.oauth_remotes[provider].userinfo(token=resp) or {})
            if extra.get("sub") != claims["sub"]:
                log.error("OpenID Connect sign-in refused: userinfo is about another subject")
                return {}
            claims = {**extra, **claims}
        return user_info_from_claims(claims, username_claim, groups_claim)

    def _oauth_calculate_user_roles(self, userinfo: dict[str, Any]) -> list:
        mapped = self.get_roles_from_keys(userinfo.get("role_keys", []))
        if mapped:
            return list(mapped)
        fallback = self.find_role(current_app.config.get("OIDC_DEFAULT_ROLE", DEFAULT_ROLE))
        return [fallback] if fallback else []
