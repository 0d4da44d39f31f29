"""The developer's local setup: an embedded PostgreSQL and generated keys under `.billplane/`.

Everything lives in that one git-ignored folder, so `make run` changes nothing else on the machine
and a second start prints the same keys.
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import signal
from pathlib import Path

from billplane.embedded.postgres import EmbeddedPostgres

HOME_VARIABLE = "BILLPLANE_HOME"


class DevEnvironment:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.postgres_dir = home / "postgres"
        self.postgres = EmbeddedPostgres(self.postgres_dir)
        self._secrets_file = home / "dev-secrets.json"
        self._stops_at_exit = False

    @classmethod
    def at(cls, cwd: Path) -> DevEnvironment:
        home = Path(os.environ.get(HOME_VARIABLE) or cwd / ".billplane").resolve()
        # 0711: others may pass through (the embedded server's account, when started as root) but
        # not list it; the secrets file inside is 0600 and the database folder belongs to its server.
        home.mkdir(mode=0o711, parents=True, exist_ok=True)
        home.chmod(0o711)
        return cls(home)

    @classmethod
    def existing(cls, cwd: Path) -> DevEnvironment | None:
        home = Path(os.environ.get(HOME_VARIABLE) or cwd / ".billplane").resolve()
        return cls(home) if (home / "postgres").is_dir() else None

    def secrets(self) -> dict[str, str]:
        """The admin key, secret key and demo key of this checkout, generated on first use."""
        stored: dict[str, str] = {}
        if self._secrets_file.exists():
            stored = json.loads(self._secrets_file.read_text())
        changed = False
        for name in ("admin_key", "secret_key"):
            if name not in stored:
                stored[name] = secrets.token_urlsafe(32)
                changed = True
        if changed:
            self._write(stored)
        return stored

    def remember(self, name: str, value: str) -> None:
        stored = self.secrets()
        stored[name] = value
        self._write(stored)

    def _write(self, stored: dict[str, str]) -> None:
        # Created 0600 before anything is written, so the keys are never world-readable.
        descriptor = os.open(self._secrets_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(stored, handle, indent=2)

    def start_database(self, *, stop_at_exit: bool) -> list[str]:
        """Start the embedded server; return the notes it has for the operator."""
        self.postgres.start()
        # Also a server taken over from a billplane process that died; not one another live
        # process started (it stops it), and only once for this process.
        if stop_at_exit and self.postgres.owns_server and not self._stops_at_exit:
            atexit.register(self.stop_database)
            self._stops_at_exit = True
        return self.postgres.notes

    def stop_database(self) -> None:
        """Stop the embedded server at exit, deaf to Ctrl-C meanwhile: ``uv run`` forwards the
        terminal's SIGINT a second time, which interrupted ``pg_ctl stop`` half way (a traceback,
        and ``owner.pid`` left naming a dead process)."""
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            self.postgres.stop()
        finally:
            signal.signal(signal.SIGINT, previous)

    def environment(self, database_url: str | None = None) -> dict[str, str]:
        """Environment variables that point billplane at this checkout's database and keys."""
        if database_url is None:
            self.start_database(stop_at_exit=True)
            database_url = self.postgres.url
        stored = self.secrets()
        return {
            "BILLPLANE_DATABASE_URL": database_url,
            "BILLPLANE_ADMIN_KEY": stored["admin_key"],
            "BILLPLANE_SECRET_KEY": stored["secret_key"],
        }
