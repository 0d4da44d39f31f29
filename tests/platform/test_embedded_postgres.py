"""The embedded PostgreSQL that billplane starts when no database is configured."""

from __future__ import annotations

import asyncio
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped, unused-ignore]  # asyncpg 0.32 ships no type hints
import pytest

from billplane.embedded import postgres as embedded
from billplane.embedded.postgres import (
    EmbeddedPostgres,
    EmbeddedPostgresError,
    find_bin_dirs,
)

pytestmark = pytest.mark.skipif(
    not find_bin_dirs(),
    reason="no PostgreSQL binaries: neither pgserver, pg_config --bindir nor /usr/lib/postgresql/*/bin",
)

IS_ROOT = os.geteuid() == 0
URL_RE = re.compile(r"^postgresql\+asyncpg://billplane:(?P<password>[^@]+)@127\.0\.0\.1:(?P<port>\d+)/billplane$")


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _query(url: str, sql: str) -> object:
    async def run() -> object:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql", 1))
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    return asyncio.run(run())


def _postmaster_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "pgdata" / "postmaster.pid").read_text().split()[0])
    except FileNotFoundError:
        return None


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _snapshot(root: Path, skip: Path) -> set[tuple[str, int, int, int]]:
    """Name, mode and owner of `root` and everything below it except `skip`."""
    entries = {(".", *_mode_owner(root))}
    for path in root.rglob("*"):
        if path == skip or skip in path.parents:
            continue
        entries.add((str(path.relative_to(root)), *_mode_owner(path)))
    return entries


def _mode_owner(path: Path) -> tuple[int, int, int]:
    info = path.lstat()
    return info.st_mode, info.st_uid, info.st_gid


@pytest.fixture(scope="module")
def base_dir() -> Iterator[Path]:
    # As root the server runs as 'postgres', which needs search (x) permission on every parent
    # of the data directory. pytest's tmp_path lives under /tmp/pytest-of-root, which is 0700,
    # and the code under test must not (and does not) loosen it. So the clusters live in a
    # directory of our own directly under the system temp dir (/tmp is 1777), made enterable
    # but not listable by others (0711). The untraversable case is tested explicitly below.
    path = Path(tempfile.mkdtemp(prefix="billplane-embedded-pg-"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def data_dir(base_dir: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    parent = base_dir / request.node.name
    parent.mkdir()
    path = parent / "pg"
    yield path
    if (path / "pgdata").exists():
        EmbeddedPostgres(path).stop()  # never leave a server behind a failed test
    shutil.rmtree(parent, ignore_errors=True)


def test_first_start_creates_cluster_and_the_url_connects(data_dir: Path) -> None:
    pg = EmbeddedPostgres(data_dir)
    pg.start()

    match = URL_RE.match(pg.url)
    assert match, "URL has the documented shape"
    assert int(match["port"]) == pg.port
    assert _query(pg.url, "SELECT 1") == 1
    assert _query(pg.url, "SELECT current_user || '/' || current_database()") == ("billplane/billplane")
    assert _query(pg.url, "SHOW listen_addresses") == "127.0.0.1"
    assert _query(pg.url, "SHOW unix_socket_directories") == ""
    assert _query(pg.url, "SHOW server_encoding") == "UTF8"

    password_file = data_dir / "password"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert password_file.read_text().strip() == match["password"]
    log_text = (data_dir / "postgres.log").read_text()
    assert "ready to accept connections" in log_text
    assert match["password"] not in log_text
    assert all(match["password"] not in note for note in pg.notes)
    if IS_ROOT:
        assert any("as user 'postgres'" in note and "root" in note for note in pg.notes)
        assert pwd.getpwuid((data_dir / "pgdata").stat().st_uid).pw_name == "postgres"
    pg.stop()


def test_start_is_idempotent_and_a_second_instance_reuses_the_server(data_dir: Path) -> None:
    pg = EmbeddedPostgres(data_dir)
    pg.start()
    pid, url = _postmaster_pid(data_dir), pg.url

    pg.start()
    assert (_postmaster_pid(data_dir), pg.url) == (pid, url)

    with EmbeddedPostgres(data_dir) as second:  # e.g. a second `make run`
        assert second.url == url
        assert _postmaster_pid(data_dir) == pid
        assert any("reusing" in note for note in second.notes)
    # The second one did not start the server, so leaving it must not stop it.
    assert _query(url, "SELECT 1") == 1
    pg.stop()
    assert _postmaster_pid(data_dir) is None
    pg.stop()  # idempotent


def test_stop_then_start_reuses_password_and_port(data_dir: Path) -> None:
    pg = EmbeddedPostgres(data_dir)
    pg.start()
    url = pg.url
    pg.stop()
    assert _postmaster_pid(data_dir) is None

    again = EmbeddedPostgres(data_dir)
    started = time.monotonic()
    again.start()
    warm_start = time.monotonic() - started
    assert again.url == url
    assert _query(again.url, "SELECT 1") == 1
    assert warm_start < 2.0, f"warm start took {warm_start:.2f}s"
    again.stop()

    with EmbeddedPostgres(data_dir) as third:
        assert third.url == url
    assert _postmaster_pid(data_dir) is None, "the context manager stops what it started"


def test_busy_persisted_port_moves_to_a_free_one(data_dir: Path) -> None:
    pg = EmbeddedPostgres(data_dir)
    pg.start()
    old_port = pg.port
    assert old_port is not None
    pg.stop()

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", old_port))
        squatter.listen()
        moved = EmbeddedPostgres(data_dir)
        moved.start()
        assert moved.port != old_port
        assert _query(moved.url, "SELECT 1") == 1
        assert any(str(old_port) in note for note in moved.notes)
        assert (data_dir / "port").read_text().strip() == str(moved.port)
        moved.stop()


def test_explicit_busy_port_fails_with_the_log_tail(data_dir: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        pg = EmbeddedPostgres(data_dir, port=port)
        with pytest.raises(EmbeddedPostgresError) as failure:
            pg.start()
    message = str(failure.value)
    assert f"127.0.0.1:{port}" in message
    assert "Last lines of" in message
    assert "could not" in message
    assert (data_dir / "password").read_text().strip() not in message
    assert _postmaster_pid(data_dir) is None


def test_stale_pid_file_and_dead_owner_are_handled(data_dir: Path) -> None:
    pg = EmbeddedPostgres(data_dir)
    pg.start()
    url = pg.url
    pg.stop()
    # A crash leaves postmaster.pid behind; worse, its pid may now belong to an unrelated live
    # process, which makes PostgreSQL itself refuse to start. Our own pid plays that process.
    pid_file = data_dir / "pgdata" / "postmaster.pid"
    pid_file.write_text(f"{os.getpid()}\n{data_dir / 'pgdata'}\n0\n{pg.port}\n\n\n\nready\n")
    pg.start()
    assert pg.url == url
    assert _postmaster_pid(data_dir) != os.getpid()

    # The billplane process that started the server died (kill -9): the next one adopts the
    # server, says so, and stops it on exit.
    (data_dir / "owner.pid").write_text(str(_dead_pid()))
    with EmbeddedPostgres(data_dir) as adopter:
        assert adopter.url == url
        assert any("left running" in note for note in adopter.notes)
    assert _postmaster_pid(data_dir) is None


def test_nothing_is_written_outside_the_data_dir(data_dir: Path) -> None:
    parent = data_dir.parent
    (parent / "sentinel.txt").write_text("untouched")
    before = _snapshot(parent, data_dir)
    # PostgreSQL's compiled-in socket directory is /tmp (Debian's: /var/run/postgresql), whatever
    # TMPDIR says.
    tmp_sockets_before = set(Path("/tmp").glob(".s.PGSQL.*"))  # noqa: S108

    pg = EmbeddedPostgres(data_dir)
    pg.start()
    pg.start()
    pg.stop()
    pg.start()
    port = pg.port
    pg.stop()

    assert _snapshot(parent, data_dir) == before
    assert set(Path("/tmp").glob(".s.PGSQL.*")) == tmp_sockets_before  # noqa: S108
    assert not Path(f"/var/run/postgresql/.s.PGSQL.{port}").exists()
    assert {p.name for p in data_dir.iterdir()} <= {
        "pgdata",
        "password",
        "port",
        "postgres.log",
        "owner.pid",
        ".lock",
    }


@pytest.mark.skipif(not IS_ROOT, reason="only root hands the server to another account")
@pytest.mark.skipif(not _has_user("postgres"), reason="needs the unprivileged 'postgres' user")
def test_untraversable_parent_is_reported_and_nothing_is_changed(data_dir: Path) -> None:
    locked = data_dir.parent / "locked"
    locked.mkdir(mode=0o700)
    target = locked / "pg"
    watched = [data_dir.parent, locked]
    before = {path: _mode_owner(path) for path in watched}

    with pytest.raises(EmbeddedPostgresError) as failure:
        EmbeddedPostgres(target).start()

    message = str(failure.value)
    assert f"'postgres' cannot enter {locked} (mode 0700, owner root)" in message
    assert f"chmod o+x {locked}" in message
    assert {path: _mode_owner(path) for path in watched} == before
    assert not target.exists()


@pytest.mark.skipif(not IS_ROOT, reason="only root hands the server to another account")
def test_missing_unprivileged_user_is_reported(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded, "SERVICE_ACCOUNT", "billplane-no-such-user")

    with pytest.raises(EmbeddedPostgresError, match="no unprivileged 'billplane-no-such-user'"):
        EmbeddedPostgres(data_dir).start()
    assert not data_dir.exists()


@pytest.mark.skipif(not IS_ROOT, reason="only root hands the server to another account")
@pytest.mark.skipif(not _has_user("postgres"), reason="needs the unprivileged 'postgres' user")
def test_binaries_the_server_account_cannot_reach(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Like a project checked out below a 0700 home directory: the venv's binaries are out of
    # reach for 'postgres', so another installation is used, or the error names the directory.
    real = find_bin_dirs()[0]
    locked = data_dir.parent / "locked-home"
    hidden_bin = locked / "bin"
    hidden_bin.mkdir(parents=True)
    locked.chmod(0o700)
    for name in ("initdb", "pg_ctl", "postgres"):
        (hidden_bin / name).symlink_to(real / name)

    monkeypatch.setattr(embedded, "find_bin_dirs", lambda: [hidden_bin])
    with pytest.raises(EmbeddedPostgresError) as failure:
        EmbeddedPostgres(data_dir).start()
    assert f"cannot enter {locked} (mode 0700" in str(failure.value)
    assert "PostgreSQL binaries" in str(failure.value)
    assert stat.S_IMODE(locked.stat().st_mode) == 0o700

    monkeypatch.setattr(embedded, "find_bin_dirs", lambda: [hidden_bin, real])
    with EmbeddedPostgres(data_dir) as pg:
        assert _query(pg.url, "SELECT 1") == 1
        assert any(f"from {real}" in note for note in pg.notes)


def test_make_run_stops_at_exit_a_server_it_took_over(base_dir: Path, request: pytest.FixtureRequest) -> None:
    # `billplane dev` registered the stop only for a server it started itself: one taken over
    # from a billplane process that died (a hang killed with SIGKILL) kept running after Ctrl-C.
    home = base_dir / request.node.name / "home"
    home.mkdir(parents=True)
    data_dir = home / "postgres"
    EmbeddedPostgres(data_dir).start()
    try:
        (data_dir / "owner.pid").write_text(str(_dead_pid()))
        code = "from pathlib import Path; from billplane.cli.devenv import DevEnvironment as D; "
        code += "print(D.at(Path.cwd()).start_database(stop_at_exit=True))"
        started = subprocess.run(  # noqa: S603 - our own interpreter
            [sys.executable, "-c", code], env=os.environ | {"BILLPLANE_HOME": str(home)},
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        assert "left running" in started.stdout
        assert _postmaster_pid(data_dir) is None
    finally:
        EmbeddedPostgres(data_dir).stop()
