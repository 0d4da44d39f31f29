"""Shared fixtures: a real PostgreSQL and a fresh database for every run (and xdist worker).

Server: BILLPLANE_TEST_DATABASE_URL if set, else 127.0.0.1:5432 if it answers, else an embedded
server that the suite starts itself. Nothing here mocks billplane's own parts.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import secrets
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import msgspec
import psycopg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.engine import make_url

from billplane.app import create_app, renew_state
from billplane.db.paths import control_scripts
from billplane.embedded.postgres import EmbeddedPostgres
from billplane.runtime import Runtime
from billplane.settings import DatabaseSettings, SecuritySettings, Settings
from billplane_tenants import Database
from billplane_tenants.migrations import upgrade_control

REPO = Path(__file__).resolve().parent.parent
ADMIN_KEY = "test-admin-key-" + "a" * 32
SECRET_KEY = "test-secret-key-" + "b" * 32


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    """Run every `async def` test on anyio; marked before anyio's own collector looks for it."""
    is_test = isinstance(collector, pytest.Module | pytest.Class) and collector.istestfunction(obj, name)
    if is_test and inspect.iscoroutinefunction(obj):
        pytest.mark.anyio(obj)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


_EMBEDDED_SERVERS: set[str] = set()
_DROP = """
import sys
import psycopg

with psycopg.connect(sys.argv[1], autocommit=True) as connection:
    connection.execute(f'DROP DATABASE IF EXISTS "{sys.argv[2]}" WITH (FORCE)')
"""


def drop_database(server_url: str, name: str) -> None:
    """Drop a database the suite made, in a process of its own that the suite does not wait for.

    PostgreSQL checkpoints at every DROP DATABASE and unlinks each file of its schemas: a whole
    run's database took 20 s, at the end of each worker's run. The embedded server is stopped
    when the run ends, so a database on it is dropped at once.
    """
    if server_url in _EMBEDDED_SERVERS:
        asyncio.run(_admin_execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        return
    quiet = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_RDWR, 0) for fd in (0, 1, 2)]
    command = [sys.executable, "-c", _DROP, _asyncpg_dsn(server_url), name]
    # Not subprocess.Popen: a Popen dropped while its process runs warns, and warnings fail tests.
    os.posix_spawn(sys.executable, command, os.environ, file_actions=quiet, setsid=True)


@pytest.fixture(scope="session")
def server_url(worker_id: str) -> Iterator[str]:
    """A URL of a PostgreSQL server on which the suite may create and drop databases."""
    if configured := os.environ.get("BILLPLANE_TEST_DATABASE_URL"):
        yield configured
    elif _answers("127.0.0.1", 5432):
        yield "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    else:
        # Inside the repo (git-ignored): as root, the unprivileged server account must be able to
        # traverse to it, which pytest's private /tmp/pytest-of-root is not.
        with EmbeddedPostgres(REPO / ".billplane" / f"test-postgres-{worker_id}") as server:
            _EMBEDDED_SERVERS.add(server.url)
            yield server.url


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _admin_execute(server: str, statement: str) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(server))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextlib.contextmanager
def fresh_database(server_url: str, prefix: str) -> Iterator[str]:
    """A new database on the server, with the control schema at head: its URL. Dropped after."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    asyncio.run(_admin_execute(server_url, f'CREATE DATABASE "{name}"'))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)

    async def upgrade() -> None:
        database = Database(url)
        try:
            await upgrade_control(database, str(control_scripts()))
        finally:
            await database.dispose()

    asyncio.run(upgrade())
    yield url
    drop_database(server_url, name)


@pytest.fixture(scope="session")
def database_url(server_url: str, worker_id: str) -> Iterator[str]:
    """A fresh database for this run and worker, with the control schema at head."""
    with fresh_database(server_url, f"billplane_test_{worker_id}") as url:
        yield url


@pytest.fixture(scope="session")
def _control_connection(database_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """One plain connection per worker for the bookkeeping below (a sync fixture has no event loop
    to keep an asyncpg connection on)."""
    with psycopg.connect(_asyncpg_dsn(database_url), autocommit=True) as connection:
        connection.execute("SET lock_timeout = '2s'")
        yield connection


@pytest.fixture(autouse=True)
def _tenants_end_with_their_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test's tenants are suspended once it has ended. The periodic scans the next tests run (the
    sweep of every ``drain``, billing runs, dunning) read every active tenant of the worker's
    database, and over a whole run that went from milliseconds to most of a second a scan. Told by
    id, not time (a server's clock may differ from this one): a tenant made by a module's fixture,
    before its first test began, stays active."""
    if "database_url" not in request.fixturenames:
        yield
        return
    connection: psycopg.Connection[tuple[object, ...]] = request.getfixturevalue("_control_connection")
    row = connection.execute("SELECT coalesce(max(id), 0) FROM control.tenants").fetchone()
    last = row[0] if row else 0
    yield
    # A lock the test left behind (it failed) leaves its tenants active, which costs only time.
    with contextlib.suppress(psycopg.errors.LockNotAvailable):
        connection.execute(
            "UPDATE control.tenants SET status = 'suspended' WHERE status = 'active' AND id > %s", [last]
        )


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database=DatabaseSettings(url=database_url, pool_size=4, max_overflow=4),
        security=SecuritySettings(admin_key=ADMIN_KEY, secret_key=SECRET_KEY, auth_cache_seconds=5.0),
    )


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    runtime = Runtime.from_settings(settings)
    yield runtime
    await runtime.close()


# Apps built by this worker, by their settings: building one's routes costs a fifth of a second,
# about a third of an average test. Each test gets its app with a whole new state (renew_state):
# a runtime, pools, caches and options of its own, as a new app would have.
_APPS: dict[bytes, Litestar] = {}
_APPS_KEPT = 8


@pytest.fixture
def app(settings: Settings) -> Litestar:
    key = msgspec.json.encode(settings)
    built = _APPS.pop(key, None)
    if built is None:
        built = create_app(settings)
    else:
        renew_state(built, settings)
    _APPS[key] = built  # the most recently used last
    while len(_APPS) > _APPS_KEPT:
        del _APPS[next(iter(_APPS))]
    return built


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app) as client:
        yield client


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_KEY}"}


def unique_slug(prefix: str = "t") -> str:
    return f"{prefix}_{secrets.token_hex(5)}"


@dataclass(frozen=True)
class CreatedTenant:
    id: int
    slug: str
    key: str
    key_id: int

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    @property
    def schema(self) -> str:
        return f"tenant_{self.slug}"


async def create_tenant(
    client: AsyncTestClient[Litestar], admin_headers: dict[str, str], prefix: str = "t"
) -> CreatedTenant:
    slug = unique_slug(prefix)
    response = await client.post("/v1/admin/tenants", json={"slug": slug, "name": slug.title()}, headers=admin_headers)
    assert response.status_code == 201, response.text
    body = response.json()
    return CreatedTenant(body["tenant"]["id"], slug, body["api_key"]["key"], body["api_key"]["id"])
