"""A revocation or suspension made through one process reaches every other process's key cache.

Each process caches resolved API keys; the other process here trusts its cache for a minute when
it hears nothing, so only the announcement can make it refuse the key in time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.auth import KeyCache
from billplane.app import create_app
from billplane.runtime import Runtime
from billplane.settings import Settings
from billplane_tenants import KeyPrincipal
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


async def test_a_listener_that_hears_nothing_is_not_listening(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Through a transaction-mode pooler a LISTEN lands on a backend that never hears anything, and
    # queries still succeed: only hearing its own ping proves the listener listens.
    async def listen_nowhere(_connection: object, _channel: str, _callback: object) -> None:
        return None

    async def working_listens() -> bool:
        return working.listening

    working = ChangeListener(settings.database.url, on_change=lambda _tenant: None, on_lost=lambda: None)
    deaf = ChangeListener(settings.database.url, on_change=lambda _tenant: None, on_lost=lambda: None)
    working.start()
    try:
        assert await _eventually(working_listens)
        monkeypatch.setattr(asyncpg.Connection, "add_listener", listen_nowhere)
        deaf.start()
        await asyncio.sleep(2)  # the working one heard its ping within a fraction of that
        assert not deaf.listening
    finally:
        await deaf.stop()
        await working.stop()
