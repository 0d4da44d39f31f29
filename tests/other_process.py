"""A second API process on the test's database, for tests of what one process announces to another."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from litestar import Litestar
from litestar.testing import AsyncTestClient

from billplane.settings import Settings


def patient(settings: Settings) -> Settings:
    """``settings`` with a key cache that trusts a resolved key for a minute: only an announcement
    can make such a process see a change in time."""
    security = type(settings.security)(
        admin_key=settings.security.admin_key, secret_key=settings.security.secret_key, auth_cache_seconds=60.0
    )
    return Settings(database=settings.database, security=security, rate_limit=settings.rate_limit)


@contextlib.asynccontextmanager
async def listening_client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """A client of ``app`` once its key cache listens for announcements."""
    async with AsyncTestClient(app) as client:
        for _ in range(100):  # the listener connects in the background at start-up
            if app.state.key_cache.listening():
                break
            await asyncio.sleep(0.02)
        assert app.state.key_cache.listening()
        yield client
