"""Key and tenant changes announced to every process, so API-key caches can live long.

A revoked key, a suspended, resumed or deleted tenant is announced with ``pg_notify`` in the
transaction that makes the change: PostgreSQL delivers it when (and only if) that transaction
commits. ``ChangeListener`` keeps one connection of its own LISTENing and tells its callback which
tenant changed. While it is not listening (starting, reconnecting), callers must not trust a cache
for longer than their short bound; ``listening`` says which bound applies.

Listening is proved, not assumed: the listener announces a ping of its own on the channel and
counts as listening only once it hears it back, and again at every heartbeat. Through a
transaction-mode pooler (PgBouncer) a LISTEN reaches some backend whose notifications never reach
the listener, and a half-open connection hears nothing either; a plain query would succeed in both.
The ping is sent the way real announcements arrive, from another connection: PostgreSQL delivers a
session's own NOTIFY back to it, so a ping sent on the listening connection could land, through
the pooler, on the very backend that ran the LISTEN and be heard while no one else's would be.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

CHANNEL = "billplane_key_changes"
APPLICATION_NAME = "billplane-keys"
_HEARTBEAT_SECONDS = 15.0
_MAX_BACKOFF_SECONDS = 30.0
_PING = "ping:"  # announcements are tenant ids: a ping is never one

logger = logging.getLogger("billplane.tenants")


async def announce_change(session: AsyncSession, tenant_id: int) -> None:
    """Tell every listening process, once the caller's transaction commits, that ``tenant_id`` changed."""
    await session.execute(select(func.pg_notify(CHANNEL, str(tenant_id))))


class ChangeListener:
    """One LISTEN connection per process; ``on_change(tenant_id)`` runs for every announcement.

    ``on_lost()`` runs whenever the connection is lost (announcements may have been missed): the
    caller drops whatever it cached. The listener reconnects with backoff until ``stop``.
    """

    def __init__(self, url: str, on_change: Callable[[int], None], on_lost: Callable[[], None]) -> None:
        self._dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._on_change = on_change
        self._on_lost = on_lost
        self._task: asyncio.Task[None] | None = None
        self._pings = itertools.count()
        self._awaited: str | None = None
        self._heard = asyncio.Event()
        self.listening = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._lost()

    def _lost(self) -> None:
        if self.listening:
            self.listening = False
            self._on_lost()

    def _notified(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload.startswith(_PING):  # every listener hears every ping: only its own counts
            if payload == self._awaited:
                self._heard.set()
            return
        try:
            self._on_change(int(payload))
        except ValueError:
            logger.warning("ignored a malformed key-change announcement")

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            connection = None
            closed = asyncio.Event()
            try:
                connection = await asyncpg.connect(self._dsn, server_settings={"application_name": APPLICATION_NAME})
                connection.add_termination_listener(lambda _connection, event=closed: event.set())
                await connection.add_listener(CHANNEL, self._notified)
                await self._echo(closed)
                self.listening = True
                backoff = 0.5
                while not closed.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(closed.wait(), _HEARTBEAT_SECONDS)
                        break
                    await self._echo(closed)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("key-change listener lost its connection (%s); retrying", type(exc).__name__)
            finally:
                self._lost()
                if connection is not None and not connection.is_closed():
                    connection.terminate()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)

    async def _echo(self, closed: asyncio.Event) -> None:
        """Announce a ping of this listener's own from another connection and hear it back within the
        heartbeat, or raise: the listening connection hears nothing, and announcements would be missed.

        The sender is a fresh connection per ping rather than one kept open: at one per heartbeat
        its cost is negligible, and every process would otherwise hold a second idle connection
        against ``max_connections`` with its own loss to watch for.
        """
        self._awaited = f"{_PING}{os.getpid()}:{id(self)}:{next(self._pings)}"
        self._heard.clear()
        async with asyncio.timeout(_HEARTBEAT_SECONDS):
            sender = await asyncpg.connect(self._dsn, server_settings={"application_name": APPLICATION_NAME})
            try:
                await sender.execute("SELECT pg_notify($1, $2)", CHANNEL, self._awaited)
            except BaseException:
                sender.terminate()  # a graceful close could hang on the connection that just failed
                raise
            await sender.close()  # within the timeout: if it hangs, the cancellation aborts it
            # Sent elsewhere, the ping cannot fail with the listening connection: its loss ends the wait.
            waits = [asyncio.ensure_future(event.wait()) for event in (self._heard, closed)]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiting in waits:
                    waiting.cancel()
        if not self._heard.is_set():
            msg = "the listening connection closed before its ping was heard"
            raise ConnectionResetError(msg)
