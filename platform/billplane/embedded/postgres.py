"""Embedded PostgreSQL: the database billplane starts when none is configured.

Everything lives in one data directory, and nothing outside it is written:

    data_dir/
        pgdata/          the cluster (initdb output)
        password         superuser password, 0600, generated once
        port             port chosen at first start, reused while it is free
        postgres.log     server log
        owner.pid        pid of the billplane process that started the server
        .lock            serialises start/stop between billplane processes

The binaries come from the ``pgserver`` wheel (PostgreSQL 16), used as plain files: its Python API
is never called because, run as root, it runs ``useradd`` and chmods every parent directory of its
data folder. See docs/adr/0002-embedded-postgres.md.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import logging
import os
import pwd
import re
import secrets
import shutil
import socket
import stat
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import quote

__all__ = ["EmbeddedPostgres", "EmbeddedPostgresError", "find_bin_dirs"]

_log = logging.getLogger(__name__)

HOST = "127.0.0.1"
USER = "billplane"
DATABASE = "billplane"
SERVICE_ACCOUNT = "postgres"

_PGDATA = "pgdata"
_PGDATA_INIT = "pgdata.initdb"
_PASSWORD_FILE = "password"  # noqa: S105 - a file name, not a password
_PORT_FILE = "port"
_LOG_FILE = "postgres.log"
_OWNER_FILE = "owner.pid"
_LOCK_FILE = ".lock"
_OUR_ENTRIES = frozenset({_PGDATA, _PGDATA_INIT, _PASSWORD_FILE, _PORT_FILE, _LOG_FILE, _OWNER_FILE, _LOCK_FILE})
_REQUIRED_BINARIES = ("initdb", "pg_ctl", "postgres")

# Appended to postgresql.conf at initdb so that the settings also hold when someone runs pg_ctl by
# hand. No Unix socket at all: the default directory (/tmp or /var/run/postgresql) is outside
# data_dir, and billplane only connects over TCP.
_SERVER_SETTINGS = """
# Added by billplane (embedded PostgreSQL)
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
"""

# postmaster.pid line numbers (0-based) and count, PostgreSQL >= 10.
_PID_LINE, _PORT_LINE, _STATUS_LINE, _PID_FILE_LINES = 0, 3, 7, 8
_VERSION_RE = re.compile(r"\(PostgreSQL\)\s+(\d+)")
_BIND_FAILURE_MARKERS = ("could not bind", "could not create any TCP/IP sockets")
_POLL_INTERVAL = 0.02
_LOG_TAIL_LINES = 20


class EmbeddedPostgresError(RuntimeError):
    """The embedded PostgreSQL could not be set up, started or stopped; the message says why."""


# --------------------------------------------------------------------------- binaries


def _has_binaries(directory: Path) -> bool:
    return all(os.access(directory / name, os.X_OK) for name in _REQUIRED_BINARIES)


def _pgserver_bin_dir() -> Path | None:
    # find_spec locates the package without executing it: we want its files, not its API.
    try:
        spec = importlib.util.find_spec("pgserver")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _pg_config_bin_dir() -> Path | None:
    exe = shutil.which("pg_config")
    if exe is None:
        return None
    try:
        # The executable comes from PATH, like any command the operator would type.
        done = subprocess.run(  # noqa: S603
            [exe, "--bindir"], capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(done.stdout.strip())


def _major_of(directory: Path) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in directory.parent.name.split("."))
    except ValueError:
        return ()


def _distribution_bin_dirs() -> list[Path]:
    return sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_major_of, reverse=True)


def find_bin_dirs() -> list[Path]:
    """Directories holding initdb, pg_ctl and postgres, most preferred first.

    pgserver's bundled binaries first (a fresh machine only needs ``pip``), then the ones a system
    installation provides.
    """
    found: list[Path] = []
    candidates = [_pgserver_bin_dir(), _pg_config_bin_dir(), *_distribution_bin_dirs()]
    for candidate in candidates:
        if candidate is None or not _has_binaries(candidate):
            continue
        resolved = candidate.resolve()
        if resolved not in found:
            found.append(resolved)
    return found


def _no_binaries_error() -> EmbeddedPostgresError:
    return EmbeddedPostgresError(
        "No PostgreSQL binaries found for the embedded database. Install the Python package "
        "'pgserver' (a billplane dependency: run `uv sync` or `pip install pgserver`), or a "
        "PostgreSQL server package (e.g. `apt-get install postgresql`), or configure an external "
        "database instead."
    )


# --------------------------------------------------------------------------- accounts


@dataclass(frozen=True)
class _Account:
    """The OS user that runs initdb/pg_ctl/postgres."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str
    switch: bool  # True when billplane runs as root and must drop to this user

    @classmethod
    def from_pwd(cls, entry: pwd.struct_passwd, *, switch: bool) -> _Account:
        groups = tuple(os.getgrouplist(entry.pw_name, entry.pw_gid))
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid, groups, entry.pw_dir, switch)

    def run(
        self,
        args: Sequence[str | Path],
        *,
        cwd: Path,
        timeout: float,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        # subprocess's user/group/extra_groups drop privileges in the child without runuser/PAM,
        # and the supplementary groups are the account's own, not root's.
        # Arguments are our own paths and flags; there is no shell and nothing from users.
        return subprocess.run(  # noqa: S603
            [str(arg) for arg in args],
            cwd=cwd,
            env=_child_env(self.home),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            user=self.uid if self.switch else None,
            group=self.gid if self.switch else None,
            extra_groups=list(self.groups) if self.switch else None,
        )

    def chown(self, path: Path) -> None:
        if self.switch:
            os.chown(path, self.uid, self.gid)


def _child_env(home: str) -> dict[str, str]:
    # PG* variables (PGDATA, PGPORT, PGHOST...) from the caller's shell must not redirect the
    # binaries; LC_ALL=C keeps log messages in English so bind failures can be recognised.
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PG", "LC_")) and key != "LANG"}
    env.update({"LC_ALL": "C", "HOME": home})
    return env


def _server_account(data_dir: Path) -> _Account:
    """Who runs the server: ourselves, or, as root, the owner of an existing cluster or 'postgres'."""
    if os.geteuid() != 0:
        return _Account.from_pwd(pwd.getpwuid(os.geteuid()), switch=False)
    owner = _owner_uid(data_dir / _PGDATA, data_dir)
    if owner not in (None, 0):
        try:
            return _Account.from_pwd(pwd.getpwuid(owner), switch=True)
        except KeyError:
            raise EmbeddedPostgresError(
                f"The embedded PostgreSQL data directory {data_dir} belongs to uid {owner}, which "
                "has no user account; delete the directory to recreate the database, or chown it "
                f"to an existing unprivileged user."
            ) from None
    try:
        return _Account.from_pwd(pwd.getpwnam(SERVICE_ACCOUNT), switch=True)
    except KeyError:
        raise EmbeddedPostgresError(
            "billplane was started as root, and PostgreSQL refuses to run as root, but there is no "
            f"unprivileged '{SERVICE_ACCOUNT}' user to run it as. billplane does not create users: "
            f"create one (`useradd --system {SERVICE_ACCOUNT}`), start billplane as an ordinary "
            "user, or configure an external database."
        ) from None


def _owner_uid(*paths: Path) -> int | None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            return path.stat().st_uid
    return None


# --------------------------------------------------------------------------- permission checks


def _can_traverse(account: _Account, directory: Path) -> bool:
    """Whether `account` may search `directory` judging by mode bits (ACLs are not read)."""
    info = directory.stat()
    if account.uid == info.st_uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid in account.groups:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def _first_blocked(account: _Account, directory: Path) -> Path | None:
    """The first directory from / down to `directory` that `account` cannot enter."""
    for candidate in [*reversed(directory.parents), directory]:
        if candidate.is_dir() and not _can_traverse(account, candidate):
            return candidate
    return None


def _enters(account: _Account, directory: Path) -> bool:
    # The kernel's own answer (ACLs included): `cd` needs search permission on every component.
    try:
        done = account.run(["/bin/sh", "-c", 'cd -- "$1"', "sh", directory], cwd=Path("/"), timeout=10)
    except OSError:
        return False
    return done.returncode == 0


def _describe(directory: Path) -> str:
    info = directory.stat()
    try:
        owner = pwd.getpwuid(info.st_uid).pw_name
    except KeyError:
        owner = str(info.st_uid)
    return f"{directory} (mode {stat.S_IMODE(info.st_mode):04o}, owner {owner})"


def _untraversable_error(account: _Account, blocked: Path, needed_for: str) -> EmbeddedPostgresError:
    return EmbeddedPostgresError(
        f"PostgreSQL refuses to run as root, so billplane runs it as user '{account.name}', but "
        f"'{account.name}' cannot enter {_describe(blocked)}, which it needs to reach {needed_for}. "
        "billplane changes no permissions outside its data directory. Fix it with "
        f"`chmod o+x {blocked}` (or `setfacl -m u:{account.name}:x {blocked}`), choose a data "
        "directory below directories that user can enter, start billplane as an ordinary user, or "
        "configure an external database."
    )


def _check_reachable(account: _Account, directory: Path, needed_for: str) -> None:
    if not account.switch or _enters(account, directory):
        return
    blocked = _first_blocked(account, directory) or directory
    raise _untraversable_error(account, blocked, needed_for)


# --------------------------------------------------------------------------- postmaster.pid


@dataclass(frozen=True)
class _Postmaster:
    pid: int
    port: int
    status: str


def _read_postmaster(pgdata: Path) -> _Postmaster | None:
    # Layout (PostgreSQL >= 10): pid, datadir, start time, port, socket dir, listen address,
    # shmem key, status. Lines may be missing while the server is still starting.
    try:
        lines = [*(pgdata / "postmaster.pid").read_text().splitlines(), *[""] * _PID_FILE_LINES]
        pid = int(lines[_PID_LINE])
        port = int(lines[_PORT_LINE] or 0)
    except (FileNotFoundError, ValueError):
        return None
    return _Postmaster(pid, port, lines[_STATUS_LINE].strip())


def _runs_in(pid: int, pgdata: Path) -> bool:
    """Whether `pid` is a postmaster for `pgdata`, and not an unrelated process that reused the pid."""
    if not Path("/proc/self").exists():  # no procfs: a live pid is the best evidence there is
        return _alive(pid)
    try:
        # postgres chdirs into its data directory, so its cwd names the cluster.
        return Path(f"/proc/{pid}/cwd").readlink() == pgdata.resolve()
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------- ports


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # PostgreSQL sets SO_REUSEADDR too, so lingering TIME_WAIT connections don't count as busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
    return port


# --------------------------------------------------------------------------- files


def _write_private(path: Path, text: str, account: _Account, *, exclusive: bool = False) -> None:
    """Write a 0600 file owned by the server account, never readable by others even briefly."""
    if exclusive:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        target = path
    else:
        target = path.with_name(f".{path.name}.tmp")
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    account.chown(target)
    if target != path:
        target.replace(path)


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _log_tail(log_file: Path, offset: int = 0) -> str:
    try:
        with log_file.open("rb") as handle:
            handle.seek(offset)
            text = handle.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return "(no log written)"
    lines = text.splitlines()[-_LOG_TAIL_LINES:]
    return "\n".join(lines) if lines else "(log is empty)"


def _log_size(log_file: Path) -> int:
    try:
        return log_file.stat().st_size
    except FileNotFoundError:
        return 0


def _output(done: subprocess.CompletedProcess[str]) -> str:
    return (done.stdout + done.stderr).strip() or f"exit status {done.returncode}"


# --------------------------------------------------------------------------- the server


class EmbeddedPostgres:
    """A PostgreSQL server private to billplane, kept in `data_dir` and listening on 127.0.0.1 only.

    ``start()`` creates the cluster on first use and reuses a server that is already running on
    the same data directory. Used as a context manager, the server is stopped on exit only if this
    object started it (or adopted it from a billplane process that has died), so a second
    ``make run`` does not pull the database from under the first.
    """

    def __init__(self, data_dir: Path, *, port: int | None = None, start_timeout: float = 30.0) -> None:
        self._data_dir = Path(data_dir).absolute()
        self._requested_port = port
        self._timeout = start_timeout
        self._port: int | None = None
        self._password: str | None = None
        self._owns_server = False
        self._notes: list[str] = []

    # ---- public interface

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the ``billplane`` database; only valid once ``start()`` returned."""
        if self._port is None or self._password is None:
            raise EmbeddedPostgresError("EmbeddedPostgres.url is only known after start()")
        password = quote(self._password, safe="")
        return f"postgresql+asyncpg://{USER}:{password}@{HOST}:{self._port}/{DATABASE}"

    @property
    def port(self) -> int | None:
        return self._port

    @property
    def owns_server(self) -> bool:
        """Whether this object started the running server, or took it over from a billplane
        process that died: then it is this one's to stop."""
        return self._owns_server

    @property
    def notes(self) -> list[str]:
        """Lines worth showing to whoever started billplane (which user runs the server, reuse...)."""
        return list(self._notes)

    def start(self) -> None:
        if self._port is not None and self._running_postmaster() is not None:
            return
        self._notes = []
        account = self._prepare_data_dir()
        with self._locked(account):
            bin_dir = self._select_bin_dir(account)
            if self._reuse_running(account):
                return
            self._remove_stale_pid_file()
            self._ensure_cluster(account, bin_dir)
            self._start_server(account, bin_dir)

    def stop(self) -> None:
        pgdata = self._data_dir / _PGDATA
        if pgdata.is_dir():
            account = _server_account(self._data_dir)
            with self._locked(account):
                if self._running_postmaster() is not None:
                    self._pg_ctl_stop(account, self._select_bin_dir(account), mode="fast")
                (self._data_dir / _OWNER_FILE).unlink(missing_ok=True)
        self._port = None
        self._owns_server = False

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._owns_server:
            self.stop()

    # ---- data directory and locking

    def _prepare_data_dir(self) -> _Account:
        """Create data_dir if needed and return the account that will run the server."""
        self._refuse_foreign_dir()
        account = _server_account(self._data_dir)
        if account.switch:
            self._notes.append(
                f"running PostgreSQL as user '{account.name}' because billplane was started as "
                "root (PostgreSQL refuses to run as root)"
            )
            self._check_parents(account)  # before anything is created or chowned
        if not self._data_dir.parent.exists():
            self._data_dir.parent.mkdir(parents=True)
            if account.switch:
                # The parents just created got root's umask, which may lock the account out.
                self._check_parents(account)
        self._data_dir.mkdir(mode=0o700, exist_ok=True)
        if account.switch and self._data_dir.stat().st_uid != account.uid:
            account.chown(self._data_dir)
        return account

    def _check_parents(self, account: _Account) -> None:
        parent = self._data_dir.parent
        existing = next(p for p in [parent, *parent.parents] if p.exists())
        _check_reachable(account, existing, f"the data directory {self._data_dir}")

    def _refuse_foreign_dir(self) -> None:
        if not self._data_dir.exists():
            return
        if not self._data_dir.is_dir():
            raise EmbeddedPostgresError(f"{self._data_dir} exists and is not a directory")
        if os.geteuid() != 0 and self._data_dir.stat().st_uid != os.geteuid():
            raise EmbeddedPostgresError(
                f"The embedded PostgreSQL data directory belongs to another user: "
                f"{_describe(self._data_dir)}; start billplane as that user (or as root), or use "
                "another data directory."
            )
        foreign = sorted(p.name for p in self._data_dir.iterdir() if p.name not in _OUR_ENTRIES)
        # Taking over (and, as root, chowning) an unrelated directory by mistake would be bad.
        if foreign and not (self._data_dir / _PGDATA).is_dir():
            raise EmbeddedPostgresError(
                f"{self._data_dir} is not empty (it holds {', '.join(foreign[:5])}) and holds no "
                "embedded PostgreSQL cluster; point billplane at an empty or new directory."
            )

    @contextlib.contextmanager
    def _locked(self, account: _Account) -> Iterator[None]:
        # Two billplane processes starting at once must not both run initdb or pg_ctl.
        lock_path = self._data_dir / _LOCK_FILE
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            account.chown(lock_path)
            self._acquire(fd)
            yield
        finally:
            os.close(fd)  # also releases the lock

    def _acquire(self, fd: int) -> None:
        deadline = time.monotonic() + self._timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise EmbeddedPostgresError(
                        f"Another billplane process has been starting or stopping the embedded "
                        f"PostgreSQL in {self._data_dir} for over {self._timeout:.0f}s; wait for "
                        "it or stop it."
                    ) from None
                time.sleep(_POLL_INTERVAL)
            else:
                return

    # ---- binaries

    def _select_bin_dir(self, account: _Account) -> Path:
        """The first binaries the account can run whose major version matches an existing cluster."""
        candidates = find_bin_dirs()
        if not candidates:
            raise _no_binaries_error()
        cluster_major = self._cluster_major()
        problems: list[str] = []
        for bin_dir in candidates:
            major = self._binary_major(account, bin_dir, problems)
            if major is None:
                continue
            if cluster_major is not None and major != cluster_major:
                problems.append(f"{bin_dir} is PostgreSQL {major}")
                continue
            if bin_dir != candidates[0]:
                self._notes.append(f"using PostgreSQL {major} from {bin_dir}")
            return bin_dir
        raise self._no_usable_binaries(account, candidates[0], cluster_major, problems)

    def _cluster_major(self) -> str | None:
        try:
            return (self._data_dir / _PGDATA / "PG_VERSION").read_text().strip()
        except FileNotFoundError:
            return None

    def _binary_major(self, account: _Account, bin_dir: Path, problems: list[str]) -> str | None:
        # Running `postgres --version` as the server account also proves it can reach the binary.
        try:
            done = account.run([bin_dir / "postgres", "--version"], cwd=Path("/"), timeout=30)
        except OSError as exc:
            problems.append(f"{bin_dir}: {exc.strerror}")
            return None
        match = _VERSION_RE.search(done.stdout)
        if done.returncode != 0 or match is None:
            problems.append(f"{bin_dir}: {_output(done)}")
            return None
        return match.group(1)

    def _no_usable_binaries(
        self, account: _Account, preferred: Path, cluster_major: str | None, problems: list[str]
    ) -> EmbeddedPostgresError:
        blocked = _first_blocked(account, preferred) if account.switch else None
        if blocked is not None:
            return _untraversable_error(account, blocked, f"the PostgreSQL binaries in {preferred}")
        wanted = f"PostgreSQL {cluster_major} (the version of the cluster in {self._data_dir})"
        return EmbeddedPostgresError(
            f"No usable binaries for {wanted if cluster_major else 'PostgreSQL'}: "
            + "; ".join(problems)
            + ". Install matching binaries, or delete the data directory to recreate the database."
        )

    # ---- cluster creation

    def _ensure_cluster(self, account: _Account, bin_dir: Path) -> None:
        pgdata = self._data_dir / _PGDATA
        if pgdata.is_dir():
            if self._load_password() is None:
                raise EmbeddedPostgresError(
                    f"The password file {self._data_dir / _PASSWORD_FILE} is missing, so the "
                    f"existing cluster in {pgdata} cannot be used; delete {self._data_dir} to "
                    "recreate the database (its data is lost)."
                )
            return
        self._init_cluster(account, bin_dir)

    def _load_password(self) -> str | None:
        try:
            password = (self._data_dir / _PASSWORD_FILE).read_text().strip()
        except FileNotFoundError:
            return None
        self._password = password or None
        return self._password

    def _init_cluster(self, account: _Account, bin_dir: Path) -> None:
        # initdb writes into a scratch directory that is renamed at the very end, so a crash
        # half-way leaves no cluster that looks complete but lacks the billplane database.
        scratch = self._data_dir / _PGDATA_INIT
        shutil.rmtree(scratch, ignore_errors=True)
        started = time.monotonic()
        self._run_initdb(account, bin_dir, scratch)
        with (scratch / "postgresql.conf").open("a") as conf:
            conf.write(_SERVER_SETTINGS)
        self._create_database(account, bin_dir, scratch)
        scratch.rename(self._data_dir / _PGDATA)
        _log.info("initialised PostgreSQL cluster in %.2fs", time.monotonic() - started)

    def _run_initdb(self, account: _Account, bin_dir: Path, scratch: Path) -> None:
        password_file = self._data_dir / _PASSWORD_FILE
        if self._load_password() is None:
            password_file.unlink(missing_ok=True)
            _write_private(password_file, secrets.token_urlsafe(24), account, exclusive=True)
            self._load_password()
        done = account.run(
            [
                bin_dir / "initdb",
                "--pgdata",
                scratch,
                "--username",
                USER,
                f"--pwfile={password_file}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",  # C works without any system locale installed
                "--no-instructions",
            ],
            cwd=self._data_dir,
            timeout=300,
        )
        if done.returncode != 0:
            raise EmbeddedPostgresError(f"initdb failed in {scratch}:\n{_output(done)}")

    def _create_database(self, account: _Account, bin_dir: Path, scratch: Path) -> None:
        # Single-user mode needs neither a port, a socket nor the password.
        done = account.run(
            [bin_dir / "postgres", "--single", "-D", scratch, "-j", "template1"],
            cwd=self._data_dir,
            stdin=f"CREATE DATABASE {DATABASE};\n",
            timeout=120,
        )
        if done.returncode != 0 or "ERROR:" in done.stderr or "FATAL:" in done.stderr:
            raise EmbeddedPostgresError(f"Creating database '{DATABASE}' in {scratch} failed:\n{_output(done)}")

    # ---- running server detection

    def _running_postmaster(self) -> _Postmaster | None:
        pgdata = self._data_dir / _PGDATA
        info = _read_postmaster(pgdata)
        if info is None or not _runs_in(info.pid, pgdata):
            return None
        return info

    def _wait_until_ready(self) -> _Postmaster | None:
        """Wait for a server that is starting up; None once no live server is left."""
        deadline = time.monotonic() + self._timeout
        while time.monotonic() < deadline:
            info = self._running_postmaster()
            if info is None:
                return None
            if info.status == "ready" and _accepts(info.port):
                return info
            time.sleep(_POLL_INTERVAL)
        raise EmbeddedPostgresError(
            f"A PostgreSQL server is running on {self._data_dir / _PGDATA} but did not accept "
            f"connections within {self._timeout:.0f}s; last lines of "
            f"{self._data_dir / _LOG_FILE}:\n{_log_tail(self._data_dir / _LOG_FILE)}"
        )

    def _reuse_running(self, account: _Account) -> bool:
        info = self._wait_until_ready()
        if info is None:
            return False
        if self._load_password() is None:
            raise EmbeddedPostgresError(
                f"A PostgreSQL server runs on {self._data_dir} but its password file is missing"
            )
        self._port = info.port
        self._adopt_or_share(account, info)
        return True

    def _adopt_or_share(self, account: _Account, info: _Postmaster) -> None:
        owner = _read_int(self._data_dir / _OWNER_FILE)
        if owner is not None and owner != os.getpid() and _alive(owner):
            self._notes.append(
                f"reusing the PostgreSQL server (pid {info.pid}, port {info.port}) that billplane "
                f"process {owner} started; it keeps running when this process exits"
            )
            return
        if owner == os.getpid():
            # Another EmbeddedPostgres object in this process started it and will stop it.
            self._notes.append(
                f"reusing the PostgreSQL server (pid {info.pid}, port {info.port}) this process already started"
            )
            return
        # The process that started it is gone (crash, kill -9): take it over so it gets stopped.
        _write_private(self._data_dir / _OWNER_FILE, str(os.getpid()), account)
        self._owns_server = True
        self._notes.append(
            f"reusing the PostgreSQL server (pid {info.pid}, port {info.port}) left running by an "
            "earlier billplane process"
        )

    def _remove_stale_pid_file(self) -> None:
        # A stale postmaster.pid whose pid now belongs to another process of the same user makes
        # PostgreSQL refuse to start; we know it is not our server, so it can go.
        pid_file = self._data_dir / _PGDATA / "postmaster.pid"
        if pid_file.exists() and self._running_postmaster() is None:
            pid_file.unlink(missing_ok=True)
            _log.info("removed stale %s", pid_file)

    # ---- start / stop

    def _choose_port(self) -> int:
        if self._requested_port is not None:
            return self._requested_port
        persisted = _read_int(self._data_dir / _PORT_FILE)
        if persisted is not None and _port_is_free(persisted):
            return persisted
        port = _free_port()
        if persisted is not None:
            self._notes.append(f"port {persisted} is in use; PostgreSQL now listens on {port}")
        return port

    def _start_server(self, account: _Account, bin_dir: Path) -> None:
        port = self._choose_port()
        if not self._pg_ctl_start(account, bin_dir, port) and self._requested_port is None:
            # Another program took the port between our check and the bind: pick another one.
            busy, port = port, _free_port()
            self._notes.append(f"port {busy} is in use; PostgreSQL now listens on {port}")
            if not self._pg_ctl_start(account, bin_dir, port):
                raise self._start_error(port, 0, "port taken twice in a row")
        if self._requested_port is None:
            _write_private(self._data_dir / _PORT_FILE, str(port), account)
        _write_private(self._data_dir / _OWNER_FILE, str(os.getpid()), account)
        self._port = port
        self._owns_server = True

    def _pg_ctl_start(self, account: _Account, bin_dir: Path, port: int) -> bool:
        """Start and wait until ready; False if only the port was busy, raise on other failures."""
        log_file = self._data_dir / _LOG_FILE
        offset = _log_size(log_file)
        started = time.monotonic()
        done = account.run(
            [
                bin_dir / "pg_ctl",
                "start",
                "--pgdata",
                self._data_dir / _PGDATA,
                "--log",
                log_file,
                "--options",
                f"-p {port}",
                "--wait",
                "--timeout",
                str(max(1, round(self._timeout))),
                "--silent",
            ],
            cwd=self._data_dir,
            timeout=self._timeout + 30,
        )
        if done.returncode == 0:
            _log.info("PostgreSQL started on port %d in %.2fs", port, time.monotonic() - started)
            return True
        self._stop_leftover(account, bin_dir)
        port_busy = any(marker in _log_tail(log_file, offset) for marker in _BIND_FAILURE_MARKERS)
        if port_busy and self._requested_port is None:
            return False
        raise self._start_error(port, offset, _output(done))

    def _start_error(self, port: int, offset: int, detail: str) -> EmbeddedPostgresError:
        log_file = self._data_dir / _LOG_FILE
        return EmbeddedPostgresError(
            f"PostgreSQL did not start on {HOST}:{port} within {self._timeout:.0f}s "
            f"(data directory {self._data_dir / _PGDATA}): {detail}\n"
            f"Last lines of {log_file}:\n{_log_tail(log_file, offset)}"
        )

    def _stop_leftover(self, account: _Account, bin_dir: Path) -> None:
        # pg_ctl gives up waiting but leaves a slow server running: don't leave it behind.
        if self._running_postmaster() is not None:
            with contextlib.suppress(EmbeddedPostgresError):
                self._pg_ctl_stop(account, bin_dir, mode="immediate")

    def _pg_ctl_stop(self, account: _Account, bin_dir: Path, *, mode: str) -> None:
        done = account.run(
            [
                bin_dir / "pg_ctl",
                "stop",
                "--pgdata",
                self._data_dir / _PGDATA,
                "--mode",
                mode,
                "--wait",
                "--timeout",
                str(max(1, round(self._timeout))),
                "--silent",
            ],
            cwd=self._data_dir,
            timeout=self._timeout + 30,
        )
        if done.returncode != 0 and self._running_postmaster() is not None:
            raise EmbeddedPostgresError(
                f"Stopping PostgreSQL in {self._data_dir / _PGDATA} failed: {_output(done)}\n"
                f"Last lines of {self._data_dir / _LOG_FILE}:\n"
                f"{_log_tail(self._data_dir / _LOG_FILE)}"
            )
