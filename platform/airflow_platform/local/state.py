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
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_STATE_DIR = Path(".local-state")
# Owner only: the folder holds keys, passwords and the database. PostgreSQL, started as an
# unprivileged user when we are root, may traverse it through its group (0710, no listing).
PRIVATE_DIR = 0o700
TRAVERSABLE_DIR = 0o710


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by the owner only, from the first byte: created 0600
    under a temporary name, then renamed over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)  # O_CREAT keeps the mode of a leftover file
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


_LOCK_DEPTH: dict[str, int] = {}
_LOCK_FILES: dict[str, int] = {}
_THREAD_LOCK = threading.RLock()


@dataclass(frozen=True)
class StateDir:
    root: Path

    @classmethod
    def at(cls, path: Path | str | None) -> StateDir:
        return cls(Path(path or DEFAULT_STATE_DIR).resolve())

    def prepare(self) -> None:
        """Create the folder owner-only (0700), and take back what an older version left
        open (0755); a folder opened to PostgreSQL's group (0710) stays as it is."""
        self.root.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        mode = stat.S_IMODE(self.root.stat().st_mode)
        if mode not in (PRIVATE_DIR, TRAVERSABLE_DIR):
            self.root.chmod(PRIVATE_DIR)

    def let_group_traverse(self, gid: int) -> None:
        """Let `gid` (PostgreSQL's, when it runs unprivileged) reach what lies inside,
        without listing the folder or reading anything in it."""
        self.prepare()
        os.chown(self.root, -1, gid)
        self.root.chmod(TRAVERSABLE_DIR)

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

    def log(self, name: str) -> Path:
        """A process's log: <logs>/<MWAA log group>/<process>.log when the rendering puts its
        pod in a log group (as CloudWatch keeps a stream per pod in its group), else
        <logs>/<process>.log (the embedded services, the watchdog)."""
        group = self.load().get("log_groups", {}).get(name)
        return self.logs / group / f"{name}.log" if group else self.logs / f"{name}.log"

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
                self.prepare()
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
        self.prepare()
        # Holds each process's environment (database URL, keys): owner-only.
        write_private(self._state_file, json.dumps(data, indent=2, sort_keys=True))

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
            "results-password": lambda: secrets.token_urlsafe(18),
            "vault-token": lambda: "root-" + secrets.token_hex(8),
        }
        from airflow_platform.local.users import generated_secrets

        wanted.update(generated_secrets())
        changed = False
        for key, make in wanted.items():
            if key not in existing:
                existing[key] = make()
                changed = True
        if changed:
            self.prepare()
            write_private(self._secrets_file, json.dumps(existing, indent=2))
        return existing
