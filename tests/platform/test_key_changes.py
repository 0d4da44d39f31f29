"""A revocation or suspension made through one process reaches every other process's key cache.

Each process caches resolved API keys; the other process here trusts its cache for a minute when
it hears nothing, so only the announcement can make it refuse the key in time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.auth import KeyCache
from billplane.app import create_app
from billplane.runtime import Runtime
from billplane.settings import Settings
from billplane_tenants import KeyPrincipal, announcements
from billplane_tenants.announcements import APPLICATION_NAME, ChangeListener
from billplane_tenants.keys import derive_pepper
from tests.conftest import create_tenant
from tests.other_process import listening_client, patient

Client = AsyncTestClient[Litestar]


@pytest.fixture
async def other(settings: Settings) -> AsyncIterator[Client]:
    """A second API process on the same database, with a cache that would keep a key for 60 s."""
    async with listening_client(create_app(patient(settings))) as client:
        yield client


def _no_tls(settings: Settings) -> str:
    """The database URL without asyncpg's TLS probe (``sslmode=prefer``, its default): with the
    heartbeat cut to a second, a slow machine can time a ping's connect out during the probe, and
    asyncpg then reports "unexpected connection_lost() call" from a callback, which the test runner
    fails the test on (MagicStack/asyncpg#1211). The listener's own behaviour is the same."""
    url = make_url(settings.database.url).update_query_dict({"sslmode": "disable"})
    return url.render_as_string(hide_password=False)


async def _eventually(check: Callable[[], Awaitable[bool]], *, within: float = 3.0) -> bool:
    for _ in range(int(within / 0.05)):
        if await check():
            return True
        await asyncio.sleep(0.05)
    return False


async def test_a_revoked_key_is_refused_by_another_process(
    client: Client, other: Client, admin_headers: dict[str, str]
) -> None:
    tenant = await create_tenant(client, admin_headers)
    assert (await other.get("/v1/tenant", headers=tenant.headers)).status_code == 200  # now cached there
    revoked = await client.delete(f"/v1/admin/tenants/{tenant.slug}/api-keys/{tenant.key_id}", headers=admin_headers)
    assert revoked.status_code == 204

    async def refused() -> bool:
        return (await other.get("/v1/tenant", headers=tenant.headers)).status_code == 401

    assert await _eventually(refused)


async def test_a_suspension_reaches_another_process_and_so_does_the_resume(
    client: Client, other: Client, admin_headers: dict[str, str]
) -> None:
    tenant = await create_tenant(client, admin_headers)
    assert (await other.get("/v1/tenant", headers=tenant.headers)).status_code == 200
    assert (await client.post(f"/v1/admin/tenants/{tenant.slug}/suspend", headers=admin_headers)).status_code == 200

    async def status_is(expected: int) -> bool:
        return (await other.get("/v1/tenant", headers=tenant.headers)).status_code == expected

    assert await _eventually(lambda: status_is(403))
    assert (await client.post(f"/v1/admin/tenants/{tenant.slug}/resume", headers=admin_headers)).status_code == 200
    assert await _eventually(lambda: status_is(200))


async def test_a_lost_listener_empties_the_cache_and_comes_back(
    other: Client, client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers)
    cache = other.app.state.key_cache
    assert (await other.get("/v1/tenant", headers=tenant.headers)).status_code == 200
    assert cache._entries  # noqa: SLF001 - the cache's own state is what this test is about
    async with runtime.database.transaction() as connection:
        terminated = await connection.scalar(
            text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = :name"),
            {"name": APPLICATION_NAME},
        )
    assert terminated >= 1

    async def emptied() -> bool:
        return not cache._entries  # noqa: SLF001

    # Announcements may have been missed while disconnected: nothing cached may be trusted.
    assert await _eventually(emptied)

    async def listening_again() -> bool:
        return bool(cache.listening())

    assert await _eventually(listening_again)


async def test_an_invalidation_heard_during_a_lookup_is_not_undone(
    client: Client, admin_headers: dict[str, str], runtime: Runtime, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = await create_tenant(client, admin_headers)
    cache = KeyCache(derive_pepper(settings.security.secret_key), ttl_seconds=60)
    real = runtime.registry.resolve_key

    async def revoked_meanwhile(session: AsyncSession, key: str) -> KeyPrincipal | None:
        principal = await real(session, key)
        # The key is revoked and its announcement heard while this lookup's answer is on its way.
        async with runtime.database.control_session() as control:
            await control.execute(
                text("UPDATE control.api_keys SET revoked_at = now() WHERE id = :id"), {"id": tenant.key_id}
            )
        assert principal is not None
        cache.invalidate_tenant(principal.tenant_id)
        return principal

    monkeypatch.setattr(runtime.registry, "resolve_key", revoked_meanwhile)
    assert await cache.resolve(runtime, tenant.key) is not None  # read before the revocation
    monkeypatch.setattr(runtime.registry, "resolve_key", real)

    assert await cache.resolve(runtime, tenant.key) is None  # not kept: asked again, and refused


async def test_a_lookup_that_began_while_not_listening_is_kept_only_briefly(
    client: Client, admin_headers: dict[str, str], runtime: Runtime, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The listener came back during the lookup: an announcement sent while it was away (a
    # revocation, a deleted tenant whose slug a new one took) was never heard, so what the lookup
    # read may already be stale. Kept for the listening lifetime, the key would work for minutes.
    tenant = await create_tenant(client, admin_headers)
    cache = KeyCache(derive_pepper(settings.security.secret_key), ttl_seconds=5)
    listening = False
    cache.listening = lambda: listening
    real = runtime.registry.resolve_key

    async def reconnected_meanwhile(session: AsyncSession, key: str) -> KeyPrincipal | None:
        nonlocal listening
        principal = await real(session, key)
        listening = True
        return principal

    monkeypatch.setattr(runtime.registry, "resolve_key", reconnected_meanwhile)
    started = asyncio.get_running_loop().time()
    assert await cache.resolve(runtime, tenant.key) is not None
    [(expires, _)] = cache._entries.values()  # noqa: SLF001 - the cache's own state is what this test is about
    assert expires - started <= 5 + 1  # the short bound, not LISTENING_TTL_SECONDS


def _timed_out(caplog: pytest.LogCaptureFixture) -> bool:
    return any(
        record.getMessage() == "key-change listener lost its connection (TimeoutError); retrying"
        for record in caplog.records
    )


async def test_a_listener_that_hears_nothing_is_not_listening(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Through a transaction-mode pooler a LISTEN lands on a backend whose notifications never reach
    # the listener, and queries still succeed: only hearing its own ping proves the listener listens.
    # A heartbeat this short lets the ping really go unheard within the test, not merely late.
    monkeypatch.setattr(announcements, "_HEARTBEAT_SECONDS", 1.0)
    listens = 0

    async def listen_nowhere(_connection: object, _channel: str, _callback: object) -> None:
        nonlocal listens
        listens += 1

    async def working_listens() -> bool:
        return working.listening

    async def deaf_retried() -> bool:
        return listens >= 2 and _timed_out(caplog)

    deaf_lost: list[None] = []
    working = ChangeListener(_no_tls(settings), on_change=lambda _tenant: None, on_lost=lambda: None)
    deaf = ChangeListener(_no_tls(settings), on_change=lambda _tenant: None, on_lost=lambda: deaf_lost.append(None))
    caplog.set_level(logging.WARNING, logger="billplane.tenants")
    working.start()
    try:
        assert await _eventually(working_listens)
        monkeypatch.setattr(asyncpg.Connection, "add_listener", listen_nowhere)
        deaf.start()
        # Its ping went unheard within the heartbeat, and it connected again.
        assert await _eventually(deaf_retried, within=10)
        assert not deaf.listening
        assert not deaf_lost  # it never counted as listening, even for a moment
        assert working.listening  # under the same heartbeat, hearing the deaf one's pings too
    finally:
        await deaf.stop()
        await working.stop()
    # Every listener hears every other's pings: they are not announcements to warn about.
    assert not [record for record in caplog.records if "malformed" in record.getMessage()]


async def test_a_listener_that_hears_only_its_own_notifications_is_not_listening(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Through a transaction-mode pooler, a ping sent on the listening connection can run on the very
    # backend that ran the LISTEN, and PostgreSQL tells a session of its own NOTIFY; what other
    # processes announce, on other backends, never reaches the listener. That ping proves nothing.
    monkeypatch.setattr(announcements, "_HEARTBEAT_SECONDS", 1.0)
    real_add_listener = asyncpg.Connection.add_listener
    listens = 0

    async def hear_only_itself(connection: asyncpg.Connection, channel: str, callback: Callable[..., None]) -> None:
        nonlocal listens
        listens += 1

        def own_only(notified: object, pid: int, notified_channel: str, payload: str) -> None:
            if pid == connection.get_server_pid():
                callback(notified, pid, notified_channel, payload)

        await real_add_listener(connection, channel, own_only)

    lost: list[None] = []
    listener = ChangeListener(_no_tls(settings), on_change=lambda _tenant: None, on_lost=lambda: lost.append(None))
    caplog.set_level(logging.WARNING, logger="billplane.tenants")
    monkeypatch.setattr(asyncpg.Connection, "add_listener", hear_only_itself)

    async def settled() -> bool:
        return listener.listening or bool(lost) or (listens >= 2 and _timed_out(caplog))

    listener.start()
    try:
        assert await _eventually(settled, within=10)
        assert not listener.listening
        assert not lost  # it never counted as listening, even for a moment
        assert listens >= 2  # its ping went unheard within the heartbeat, and it connected again
    finally:
        await listener.stop()


async def test_the_listener_connects_where_the_listen_url_says(
    client: Client, settings: Settings, admin_headers: dict[str, str]
) -> None:
    # Requests go to the database URL, the listener to BILLPLANE_DATABASE_LISTEN_URL: here a port
    # nobody listens on, so this process never hears the revocation and trusts its cache (60 s).
    patient_settings = patient(settings)
    unreachable = "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"
    database = msgspec.structs.replace(patient_settings.database, listen_url=unreachable)
    deaf = msgspec.structs.replace(patient_settings, database=database)
    tenant = await create_tenant(client, admin_headers)
    async with AsyncTestClient(app=create_app(deaf)) as other:
        assert (await other.get("/v1/tenant", headers=tenant.headers)).status_code == 200
        path = f"/v1/admin/tenants/{tenant.slug}/api-keys/{tenant.key_id}"
        assert (await client.delete(path, headers=admin_headers)).status_code == 204
        await asyncio.sleep(1.0)  # a listening process refuses it within this (the tests above)
        assert (await other.get("/v1/tenant", headers=tenant.headers)).status_code == 200
