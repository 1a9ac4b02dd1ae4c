"""The state directory: ports, generated secrets, process records, logs and data.

Everything the local platform owns lives under one directory (default ./.local-state)
so that `down` works from another process and `up` can be re-run safely.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_STATE_DIR = Path(".local-state")
_LOCK_DEPTH: dict[str, int] = {}
_LOCK_FILES: dict[str, int] = {}
_THREAD_LOCK = threading.RLock()


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
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive across processes (`up`, the watchdog, `down`); re-entrant within one."""
        key = str(self.root)
        with _THREAD_LOCK:
            if _LOCK_DEPTH.get(key, 0) == 0:
                self.root.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(fd, fcntl.LOCK_EX)
                _LOCK_FILES[key] = fd
            _LOCK_DEPTH[key] = _LOCK_DEPTH.get(key, 0) + 1
            try:
                yield
            finally:
                _LOCK_DEPTH[key] -= 1
                if _LOCK_DEPTH[key] == 0:
                    fd = _LOCK_FILES.pop(key)
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    os.close(fd)

    def load(self) -> dict[str, Any]:
        try:
            return json.loads(self._state_file.read_text())
        except FileNotFoundError:
            return {}

    def save(self, data: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self._state_file.with_suffix(f".tmp{os.getpid()}")
        # Holds each process's environment (database URL, keys): owner-only.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(data, indent=2, sort_keys=True))
        os.replace(tmp, self._state_file)

    def update(self, **sections: Any) -> dict[str, Any]:
        with self.locked():
            data = self.load()
            data.update(sections)
            self.save(data)
            return data

    def secrets(self) -> dict[str, str]:
        """Fernet key, API secret, JWT secret, database password, Vault token, the OpenID
        Connect client secrets and the passwords of the provider's users:
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
            "vault-token": lambda: "root-" + secrets.token_hex(8),
        }
        from airflow_platform.local.oidc import generated_secrets

        wanted.update(generated_secrets())
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
