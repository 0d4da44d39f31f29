"""The worker side of ``WEBHOOKS_CHANNEL``: LISTEN, then defer jobs for the notified tenants' deliveries.

``emit`` and replays notify with the tenant's schema when they queue deliveries; PostgreSQL
delivers that at commit. One dedicated asyncpg connection per worker listens (a pooled one would
be recycled and drop the LISTEN), reconnects with backoff, and sweeps every tenant whenever it
starts listening, so deliveries committed while nobody listened go out at once rather than at
the next periodic sweep.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from billplane.events.emit import WEBHOOKS_CHANNEL
from billplane.events.jobs import defer_missing
from billplane.events.sweep import DeliverySweeper
from billplane_tenants.naming import validate_schema_name

logger = logging.getLogger("billplane.webhooks")
APPLICATION_NAME = "billplane-webhooks-listener"


@dataclass(slots=True)
class DeliveryListener:
    dsn: str
    sweeper: DeliverySweeper
    first_backoff: float = 0.5
    max_backoff: float = 30.0
    # Rest between passes: a burst of events costs a few passes a second, not one per event.
    pause: float = 0.05
    listening: asyncio.Event = field(default_factory=asyncio.Event)
    _pending: set[str] = field(default_factory=set)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        backoff = self.first_backoff
        while True:
            try:
                await self._listen()
                backoff = self.first_backoff
            except Exception as exc:  # any failure to connect or listen: try again later
                logger.warning("webhooks listener: %s: %s; retrying in %.1f s", type(exc).__name__, exc, backoff)
            self.listening.clear()
            await asyncio.sleep(backoff * (0.5 + random.random() / 2))  # noqa: S311 - jitter, not a secret
            backoff = min(backoff * 2, self.max_backoff)

    async def _listen(self) -> None:
        connection: Any = await asyncpg.connect(
            self.dsn, timeout=10, server_settings={"application_name": APPLICATION_NAME}
        )
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _connection: lost.set())
        try:
            await connection.add_listener(WEBHOOKS_CHANNEL, self._notified)
            try:
                await self.sweeper.sweep()
            except Exception:  # the periodic sweep will
                logger.exception("webhooks listener: the catch-up sweep failed")
            self.listening.set()
            while not lost.is_set():
                self._wake.clear()
                if not self._pending:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=30)
                    if not self._pending:
                        await connection.fetchval("SELECT 1", timeout=10)  # notices a silent peer
                        continue
                await self._drain()
                await asyncio.sleep(self.pause)
        finally:
            self.listening.clear()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 10)

    def _notified(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            self._pending.add(validate_schema_name(payload))
        except ValueError:  # anyone with the database role can notify: ignore what is not ours
            logger.warning("webhooks listener: ignored a notification that names no tenant schema")
            return
        self._wake.set()

    async def _drain(self) -> None:
        schemas, self._pending = self._pending, set()
        try:
            refs = await self.sweeper.due_of_schemas(schemas)
            await defer_missing(self.sweeper.queue, refs)
        except Exception:  # the deliveries are committed: the periodic sweep queues them
            logger.exception("webhooks listener: could not queue the deliveries of %d tenants", len(schemas))
