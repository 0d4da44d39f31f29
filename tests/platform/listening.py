"""A workers' outbox listener running on the test's loop, with no worker: what it queues stays queued."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import anyio

from billplane.runtime import Runtime
from billplane.sync.listener import ListenerOptions, OutboxListener, asyncpg_dsn
from billplane.sync.sweep import Sweeper
from tests.platform.sync_fakes import FAST


@contextlib.asynccontextmanager
async def running_listener(runtime: Runtime) -> AsyncIterator[OutboxListener]:
    options = ListenerOptions(first_backoff=0.05, max_backoff=0.2)
    listening = OutboxListener(
        asyncpg_dsn(runtime.database.url), Sweeper(runtime.database, runtime.jobs, FAST), runtime.jobs, options
    )
    task = asyncio.create_task(listening.run())
    try:
        with anyio.fail_after(10):
            await listening.listening.wait()
        yield listening
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
