"""What the app sends that a test watches: PostgreSQL notifications on a channel, heard by a
connection of the test's own, and the statements the app sends through SQLAlchemy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import anyio
import asyncpg
from litestar import Litestar
from sqlalchemy import event

from billplane.sync.listener import asyncpg_dsn

SENTINEL = "test-sentinel"


class Channel:
    """Payloads notified on one channel since the test began listening."""

    def __init__(self, dsn: str, channel: str) -> None:
        self.dsn = dsn
        self.channel = channel
        self.heard: asyncio.Queue[str] = asyncio.Queue()

    async def until_now(self) -> list[str]:
        """Everything heard so far: a sentinel notified now arrives after every earlier commit's."""
        connection = await asyncpg.connect(self.dsn)
        try:
            await connection.execute("SELECT pg_notify($1, $2)", self.channel, SENTINEL)
        finally:
            await connection.close()
        payloads = []
        with anyio.fail_after(5):
            while (payload := await self.heard.get()) != SENTINEL:
                payloads.append(payload)
        return payloads


@asynccontextmanager
async def listening(database_url: str, channel: str) -> AsyncIterator[Channel]:
    heard = Channel(asyncpg_dsn(database_url), channel)
    connection = await asyncpg.connect(heard.dsn)
    await connection.add_listener(channel, lambda *args: heard.heard.put_nowait(args[3]))
    try:
        yield heard
    finally:
        await connection.close()


@contextmanager
def sent_statements(app: Litestar) -> Iterator[list[str]]:
    """Every statement the app sends through SQLAlchemy (BEGIN and COMMIT are not statements)."""
    seen: list[str] = []
    engine = app.state.runtime.database.engine.sync_engine

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
