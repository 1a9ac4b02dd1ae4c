"""The state directory: ports, generated secrets, process records, logs and data.

Everything the local platform owns lives under one directory (default ./.local-state)
so that `down` works from another process and `up` can be re-run safely.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_STATE_DIR = Path(".local-state")


@dataclass(frozen=True)
class StateDir:
    root: Path

    @classmethod
    def at(cls, path: Path | str | None) -> StateDir:
        return cls(Path(path or DEFAULT_STATE_DIR).resolve())

    # --- layout -------------------------------------------------------------------------
    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def pgdata(self) -> Path:
        return self.root / "postgres" / "data"

    @property
    def sync_root(self) -> Path:
        """Shared by every component (in a pod each has its own emptyDir; here one
        dagsync feeds them all, since they share one disk)."""
        return self.root / "sync"

    @property
    def airflow_home(self) -> Path:
        return self.root / "airflow-home"

    @property
    def rendered(self) -> Path:
        return self.root / "rendered.yaml"

    def volume(self, name: str) -> Path:
        return self.root / "volumes" / name

    def log(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    @property
    def _state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def _secrets_file(self) -> Path:
        return self.root / "secrets.json"

    # --- persisted documents --------------------------------------------------------
    def load(self) -> dict[str, Any]:
        try:
            return json.loads(self._state_file.read_text())
        except FileNotFoundError:
            return {}

    def save(self, data: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self._state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
        os.replace(tmp, self._state_file)

    def update(self, **sections: Any) -> dict[str, Any]:
        data = self.load()
        data.update(sections)
        self.save(data)
        return data

    def secrets(self) -> dict[str, str]:
        """Fernet key, API secret, JWT secret, database and admin passwords, Vault token:
        generated once and kept, so a warm `up` reuses the same database and logins."""
        try:
            existing: dict[str, str] = json.loads(self._secrets_file.read_text())
        except FileNotFoundError:
            existing = {}
        wanted = {
            "fernet-key": lambda: base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "api-secret-key": lambda: secrets.token_urlsafe(32),
            "jwt-secret": lambda: secrets.token_urlsafe(32),
            "postgres-password": lambda: secrets.token_urlsafe(18),
            "admin-password": lambda: secrets.token_urlsafe(12),
            "vault-token": lambda: "root-" + secrets.token_hex(8),
        }
        changed = False
        for key, make in wanted.items():
            if key not in existing:
                existing[key] = make()
                changed = True
        if changed:
            self.root.mkdir(parents=True, exist_ok=True)
            self._secrets_file.write_text(json.dumps(existing, indent=2))
            self._secrets_file.chmod(0o600)
        return existing
