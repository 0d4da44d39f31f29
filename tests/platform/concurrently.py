"""Running API requests at the same time in tests, and holding row locks while they run.

The test client runs one request at a time on its caller's loop (Litestar's blocking portal), so
``asyncio.gather`` of two requests runs them one after the other: each request here runs in a
thread of its own. A lock held from a raw connection stops a request at a chosen statement.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import asyncpg  # type: ignore[import-untyped, unused-ignore]  # asyncpg 0.32 ships no type hints
from sqlalchemy.engine import make_url

WAIT = 0.5  # long enough for a request to reach the lock it waits for


@asynccontextmanager
async def held(database_url: str, schema: str, *statements: str) -> AsyncIterator[asyncpg.Connection]:
    """A transaction in ``schema`` that ran ``statements`` (taking their locks), committed at the
    end of the block; rolled back if the block raises."""
    url = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(url)
    try:
        async with connection.transaction():
            await connection.execute(f'SET LOCAL search_path = "{schema}"')
            for statement in statements:
                await connection.execute(statement)
            yield connection
    finally:
        await connection.close()


def in_thread(request: Coroutine[Any, Any, Any]) -> asyncio.Future[Any]:
    """``request`` started now, in a thread of its own."""
    return asyncio.ensure_future(asyncio.to_thread(asyncio.run, request))
