"""Telling the workers what a billing run queued: charges (outbox rows) and webhook deliveries.

A NOTIFY sent inside a transaction makes its commit take a lock that every other committing
transaction with a NOTIFY waits for, held until the commit's WAL flush is done
(docs/performance.md, "NOTIFY serializes commits"): the run's two tenants at once queued behind
each other's commits. So the run sends its announcements after the tenants' commits, a few
tenants at a time, in a statement of their own (no transaction id, so no WAL flush under that
lock). A worker still never hears of rows it cannot see, and an announcement lost to a crash
between the commit and the sending costs latency only: the workers' periodic sweeps (every
minute) find the outbox rows and deliveries without it.
"""

from __future__ import annotations

import logging
from typing import Any

from billplane_tenants import Database

logger = logging.getLogger("billplane.billing")
Announcement = tuple[str, str]  # (channel, payload)
EVERY = 10  # tenants' announcements sent together: a charge waits for at most that many tenants
_NOTIFY = "SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) AS n(c, p)"


async def announce(driver: Any, announcements: list[Announcement]) -> None:
    """NOTIFY each announcement on ``driver`` (in its transaction, if one is open)."""
    if announcements:
        await driver.execute(_NOTIFY, [channel for channel, _ in announcements], [p for _, p in announcements])


class Announcer:
    """A run's announcements of committed tenants, sent every ``EVERY`` tenants and at the end."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._pending: list[Announcement] = []
        self._tenants = 0

    async def committed(self, announcements: list[Announcement]) -> None:
        """Queue a tenant's announcements; call only once its transaction has committed."""
        self._pending += announcements
        self._tenants += 1
        if self._tenants >= EVERY:
            await self.flush()

    async def flush(self) -> None:
        pending, self._pending, self._tenants = self._pending, [], 0
        if not pending:
            return
        try:
            async with self._database.engine.connect() as connection:
                raw = await connection.get_raw_connection()
                await announce(raw.driver_connection, pending)  # no transaction begun: autocommit
        except Exception:
            # Only latency is lost: the periodic sweeps find what these would have announced.
            logger.warning(
                "billing run: %d announcements not sent; the sweeps will find their rows", len(pending), exc_info=True
            )
