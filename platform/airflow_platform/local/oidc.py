"""The local OpenID Connect provider: node-oidc-provider beside PostgreSQL, moto and OpenBao.

It speaks the real protocol (discovery, JWKS, authorization code flow with PKCE, signed ID
tokens carrying a `groups` claim); Airflow signs users in through FAB exactly as it would
with Cognito, Okta, Entra ID or Keycloak. The seeded users, one per MWAA role, and their
groups live in `<state>/oidc/users.json` (re-read at every sign-in, so a group change
applies at the user's next login); their passwords are generated into the state's
secrets.json and printed by `local up`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
from pathlib import Path

from airflow_platform.local.http import status_of
from airflow_platform.local.supervisor import Supervisor
from airflow_platform.local.users import (  # noqa: F401  (the provider's users)
    USERS,
    LocalUser,
    generated_secrets,
    password_key,
)
from airflow_platform.local.waiting import ServiceError, poll

SOURCE = Path(__file__).with_name("oidc")
CLIENT_ID = "airflow"
# A second registered client: its codes and tokens must never sign anyone in to Airflow.
OTHER_CLIENT_ID = "other-app"
OTHER_CLIENT_REDIRECT = "http://127.0.0.1:9/other-app/callback"
PROVIDER_NAME = "oidc"  # FAB's provider name: the callback is /auth/oauth-authorized/oidc


def hash_password(password: str) -> str:
    """scrypt (N=2^14, r=8, p=1), the parameters the provider verifies with."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=16384, r=8, p=1, dklen=32)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def modules_dir(repo: Path) -> Path:
    return repo / ".cache" / "oidc-provider" / "node_modules"


def check_installed(repo: Path) -> list[str]:
    """What is missing to run the provider (empty when ready)."""
    missing = []
    if not shutil.which("node"):
        missing.append("`node` (Node.js 20 or newer) for the local OpenID Connect provider")
    if not (modules_dir(repo) / "oidc-provider" / "package.json").exists():
        missing.append(
            f"the npm package oidc-provider under {modules_dir(repo)}: run ./scripts/bootstrap.sh"
        )
    return missing


class LocalOidc:
    def __init__(self, sup: Supervisor, repo: Path, port: int) -> None:
        self.sup = sup
        self.repo = repo
        self.port = port
        self.dir = sup.state.root / "oidc"

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def users_file(self) -> Path:
        return self.dir / "users.json"

    def _write(self, path: Path, data: object) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o700)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(data, indent=2, sort_keys=True))
        os.replace(tmp, path)

    def _signing_key(self) -> dict[str, str]:
        """An RSA key made once per state dir, so tokens survive a provider restart."""
        path = self.dir / "signing-key.json"
        if path.exists():
            return json.loads(path.read_text())
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        numbers = key.private_numbers()

        def b64(n: int) -> str:
            raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

        pub = numbers.public_numbers
        jwk = {
            "kty": "RSA",
            "kid": secrets.token_hex(8),
            "alg": "RS256",
            "use": "sig",
            "n": b64(pub.n),
            "e": b64(pub.e),
            "d": b64(numbers.d),
            "p": b64(numbers.p),
            "q": b64(numbers.q),
            "dp": b64(numbers.dmp1),
            "dq": b64(numbers.dmq1),
            "qi": b64(numbers.iqmp),
        }
        self._write(path, jwk)
        return jwk

    def config(self, api_ports: list[int], generated: dict[str, str]) -> dict[str, object]:
        redirects = [
            f"http://{host}:{port}/auth/oauth-authorized/{PROVIDER_NAME}"
            for port in api_ports
            for host in ("127.0.0.1", "localhost")
        ]
        return {
            "clients": [
                {
                    "client_id": CLIENT_ID,
                    "client_secret": generated["oidc-client-secret"],
                    "redirect_uris": redirects,
                    "grant_types": ["authorization_code"],
                    "response_types": ["code"],
                    "token_endpoint_auth_method": "client_secret_basic",
                },
                {
                    "client_id": OTHER_CLIENT_ID,
                    "client_secret": generated["oidc-other-client-secret"],
                    "redirect_uris": [OTHER_CLIENT_REDIRECT],
                    "grant_types": ["authorization_code"],
                    "response_types": ["code"],
                    "token_endpoint_auth_method": "client_secret_basic",
                },
            ],
            "cookieKeys": [generated["api-secret-key"]],
            "jwks": {"keys": [self._signing_key()]},
        }

    def seed_users(self, generated: dict[str, str]) -> None:
        """Every seeded user with its password; groups already changed are kept."""
        current = self.users()
        users = {}
        for user in USERS:
            known = current.get(user.name, {})
            password = generated[password_key(user.name)]
            stored = known.get("password", "")
            if not _verifies(stored, password):
                stored = hash_password(password)
            users[user.name] = {
                "password": stored,
                "email": f"{user.name}@airflow.local",
                "name": f"Local {user.role}",
                "groups": known.get("groups", list(user.groups)),
            }
        self._write(self.users_file, {"users": users})

    def users(self) -> dict[str, dict[str, object]]:
        try:
            return json.loads(self.users_file.read_text())["users"]
        except FileNotFoundError:
            return {}

    def set_groups(self, username: str, groups: list[str]) -> None:
        """Change a user's groups at the provider (takes effect at its next sign-in)."""
        users = self.users()
        if username not in users:
            raise ServiceError(f"no user {username!r} at the local OpenID Connect provider")
        users[username]["groups"] = list(groups)
        self._write(self.users_file, {"users": users})

    def ensure(self, api_ports: list[int], generated: dict[str, str]) -> bool:
        """Start the provider, or restart it when its clients changed; True when started."""
        missing = check_installed(self.repo)
        if missing:
            raise ServiceError("cannot start the OpenID Connect provider: " + "; ".join(missing))
        self.seed_users(generated)
        config = self.config(api_ports, generated)
        config_file = self.dir / "config.json"
        unchanged = config_file.exists() and json.loads(config_file.read_text()) == config
        if self.sup.alive("oidc") and unchanged:
            return False
        self.sup.stop("oidc")
        self._write(config_file, config)
        self.sup.start(
            "oidc",
            [shutil.which("node") or "node", str(SOURCE / "server.mjs")],
            env={
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": str(self.dir),
                "OIDC_ISSUER": self.issuer,
                "OIDC_CONFIG": str(config_file),
                "OIDC_USERS": str(self.users_file),
                "OIDC_MODULES": str(modules_dir(self.repo).resolve()),
                "NODE_ENV": "production",
            },
            ports={"oidc": self.port},
        )
        discovery = f"{self.issuer}/.well-known/openid-configuration"
        poll(self.sup, "oidc", lambda: status_of(discovery) == 200, 60, "the OIDC provider")
        return True


def _verifies(stored: object, password: str) -> bool:
    try:
        scheme, salt, digest = str(stored).split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    raw = base64.b64decode(digest)
    actual = hashlib.scrypt(
        password.encode(), salt=base64.b64decode(salt), n=16384, r=8, p=1, dklen=len(raw)
    )
    return secrets.compare_digest(raw, actual)
