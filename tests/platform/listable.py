"""Waiting until every event committed so far shows in ``GET /v1/events``.

The list shows an event once every transaction that began writing before it has ended, in the
whole cluster (billplane.events.repository). The suite runs in parallel against one PostgreSQL,
so another worker's open transaction can hold back an event a test has just committed: a test
that reads the list right after a change waits for this first. A connection of its own, so it
works from any event loop (the app under test may run in another).
"""

from __future__ import annotations

import asyncio

import asyncpg

from billplane.sync.listener import asyncpg_dsn

# xmax: the first transaction id not yet given out, so every committed event's is below it.
_NEXT = "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint"
_ENDED_BEFORE = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"


async def events_listable(database_url: str, *, within: float = 30.0) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        mark = int(await connection.fetchval(_NEXT))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while int(await connection.fetchval(_ENDED_BEFORE)) < mark:
            assert loop.time() < deadline, f"a transaction older than {mark} is still open after {within} s"
            await asyncio.sleep(0.01)
    finally:
        await connection.close()
