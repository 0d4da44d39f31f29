"""The worker side of the outbox notification: LISTEN, then defer jobs for the notified tenants.

A create queues its outbox rows and ``pg_notify``s in the same statement (``with_outbox_rows``),
so the API process does no queue work. Each worker keeps one dedicated asyncpg connection (not
from the pool: a pooled connection would be recycled and would drop the LISTEN) and collects the
(tenant id, schema) pairs it hears. In batches it reads those tenants' due rows with the sweep's
query (no grace period) and defers their jobs with the queueing lock, so a row the sweep or
another worker already queued is not queued twice.

If the connection drops it reconnects with backoff; whenever it starts listening it runs one
sweep without grace, so rows whose notification nobody heard (committed before the worker
started, or while it was reconnecting) are queued at once instead of at the next periodic sweep.

It also hears ``CLOCKS_CHANNEL``: a test clock's advance queues the clocks job at once (one job
however many clocks were asked; the periodic job stays the fallback for a missed notification).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from billplane.billing.dunning_tasks import ADVANCE_CLOCKS
from billplane.sync.channel import CLOCKS_CHANNEL, OUTBOX_CHANNEL, parse_notify_payload
from billplane.sync.queue import JobQueue
from billplane.sync.sweep import Sweeper

logger = logging.getLogger("billplane.sync")
APPLICATION_NAME = "billplane-outbox-listener"


def asyncpg_dsn(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass(slots=True, kw_only=True)
class ListenerOptions:
    batch: int = 200  # tenants per due-rows query
    # Rest between two passes over notified tenants: a stream of creates then costs a few passes
    # a second (each covers every tenant heard meanwhile), not one per notification.
    pause: float = 0.05
    first_backoff: float = 0.5  # seconds before the first reconnect; doubles up to max_backoff
    max_backoff: float = 30.0
    # How often an idle connection is checked with a query: a peer that vanished without closing
    # the socket (a network partition) is otherwise only noticed by TCP keepalive, much later.
    check_every: float = 30.0
    connect_timeout: float = 10.0


@dataclass(slots=True)
class OutboxListener:
    dsn: str
    sweeper: Sweeper
    queue: JobQueue
    options: ListenerOptions = field(default_factory=ListenerOptions)
    # Set while LISTEN is active and the catch-up sweep is done (tests and health checks wait on it).
    listening: asyncio.Event = field(default_factory=asyncio.Event)
    connections: int = 0  # connections made so far: 1 + reconnects
    _pending: dict[tuple[int, str], None] = field(default_factory=dict)  # an ordered set
    _clocks: bool = False  # a test clock was asked to advance since the last pass
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        """Listen until cancelled, reconnecting with backoff (and jitter) whenever the connection is lost."""
        backoff = self.options.first_backoff
        while True:
            try:
                await self._listen()
                backoff = self.options.first_backoff  # it was up: the next drop starts over
            except Exception as exc:  # any failure to connect or to listen: try again later
                logger.warning("outbox listener: %s: %s; retrying in %.1f s", type(exc).__name__, exc, backoff)
            self.listening.clear()
            await asyncio.sleep(backoff * (0.5 + random.random() / 2))  # noqa: S311 - jitter, not a secret
            backoff = min(backoff * 2, self.options.max_backoff)

    async def _listen(self) -> None:
        connection: Any = await asyncpg.connect(
            self.dsn, timeout=self.options.connect_timeout, server_settings={"application_name": APPLICATION_NAME}
        )
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _connection: lost.set())
        try:
            await connection.add_listener(OUTBOX_CHANNEL, self._notified)
            await connection.add_listener(CLOCKS_CHANNEL, self._clock_notified)
            self.connections += 1
            await self._catch_up()
            self.listening.set()
            logger.info("outbox listener: listening on %s", OUTBOX_CHANNEL)
            while not lost.is_set():
                if await self._wait(lost):
                    await self._drain()
                    await asyncio.sleep(self.options.pause)
                elif not lost.is_set():
                    await connection.fetchval("SELECT 1", timeout=self.options.connect_timeout)
            logger.warning("outbox listener: connection lost; reconnecting")
        finally:
            self.listening.clear()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), self.options.connect_timeout)

    async def _wait(self, lost: asyncio.Event) -> bool:
        """Until notified (True), the connection is lost, or it is time for a check (False)."""
        self._wake.clear()  # before looking: a notification sets _pending first, then _wake
        if self._pending or self._clocks:
            return True
        woken = asyncio.ensure_future(self._wake.wait())
        ended = asyncio.ensure_future(lost.wait())
        try:
            await asyncio.wait({woken, ended}, timeout=self.options.check_every, return_when=asyncio.FIRST_COMPLETED)
        finally:
            woken.cancel()
            ended.cancel()
        return bool(self._pending) or self._clocks

    def _notified(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        pair = parse_notify_payload(payload)
        if pair is None:
            logger.warning("outbox listener: ignored a notification that names no tenant schema")
            return
        self._pending[pair] = None
        self._wake.set()

    def _clock_notified(self, _connection: object, _pid: int, _channel: str, _payload: str) -> None:
        self._clocks = True
        self._wake.set()

    async def _drain(self) -> None:
        """Defer jobs for the due rows of every notified tenant, a batch of tenants per query, and
        the clocks job if a clock was asked to advance.

        Notifications that arrive meanwhile join the next batch: a burst for one tenant costs
        one query, not one per notification.
        """
        if self._clocks:
            self._clocks = False
            try:
                await self.queue.defer_periodic_now(ADVANCE_CLOCKS)
            except Exception:  # the clock is marked advancing: the periodic job advances it
                logger.exception("outbox listener: could not queue the test clocks job")
        while self._pending:
            batch = list(self._pending)[: self.options.batch]
            for pair in batch:
                del self._pending[pair]
            try:
                deferred = await self.queue.defer_missing(await self.sweeper.due_outbox_of(batch))
            except Exception:  # the rows are committed: the periodic sweep defers them
                logger.exception("outbox listener: could not queue the rows of %d tenants", len(batch))
            else:
                logger.debug("outbox listener: %d jobs for %d tenants", deferred, len(batch))

    async def _catch_up(self) -> None:
        try:
            await self.sweeper.sweep(grace_seconds=0)
        except Exception:  # the periodic sweep will
            logger.exception("outbox listener: the catch-up sweep failed")
