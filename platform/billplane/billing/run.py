"""The billing run: every subscription whose period ended, or whose pause reached its ``resume_at``,
in every active tenant, moved on (an unpaid one only when it is set to cancel then: ``locked.MOVED``).

One read per batch of tenant schemas finds the due subscriptions (as the sync sweep finds due
rows); each tenant's are then advanced together in one transaction of that tenant, locked with
SKIP LOCKED so that two runs at once share the work instead of repeating it (and the invoice's
unique constraint would refuse a second invoice for a period anyway). One transaction per tenant,
not one per subscription: a run's time went to round trips, dozens per subscription. A tenant
that fails is logged and rolled back whole, and the run goes on with the others; the next run
retries it.
Customers on a test clock are left to their clock (``POST /v1/test-clocks/{id}/advance``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from functools import partial

from billplane.billing.announcing import Announcer
from billplane.billing.locked import FIRST_DUE, MOVED, due_by, lock_due
from billplane.billing.tenant_batch import bill_locked
from billplane.db import tenant_scan
from billplane.provider_accounts.resolved import AccountSource
from billplane_tenants import Database
from billplane_tenants.naming import quoted_schema

logger = logging.getLogger("billplane.billing")
_PER_TENANT = 1000
# Tenants billed at once, each in its own transaction on its own pooled connection: while one
# waits on PostgreSQL the process prices the next (the run is about half Python, half PostgreSQL;
# docs/performance.md, "Billing runs"). More than 2 gained nothing on 2 cores.
CONCURRENT_TENANTS = 2


@dataclass(slots=True)
class RunReport:
    subscriptions: int = 0
    invoices: int = 0
    failed_tenants: list[str] = field(default_factory=list)
    # Left due and unbilled, the rest of their tenant billed: an amount over the limit (``cycle``).
    refused_subscriptions: int = 0


@dataclass(slots=True)
class BillingRun:
    database: Database
    # None in a process that calls no provider: invoices are charged only through an account their
    # subscription names, never the tenant's default one (as ``DefaultAccountCache.ids``).
    accounts: AccountSource | None
    # Providers that bill the subscriptions they hold (ProviderPlugin.bills_subscriptions): their
    # subscriptions are left to them, or the customer would be charged twice.
    provider_billed: frozenset[str] = frozenset()
    concurrency: int = CONCURRENT_TENANTS

    async def run(self) -> RunReport:
        report = RunReport()
        tenants = await tenant_scan.active_tenants(self.database)
        # A schema whose due scan fails counts as a failed tenant; the rest of its batch is billed.
        due = _DueTenants(partial(self._due, failed=report.failed_tenants), tenant_scan.batches(list(tenants)))
        announcer = Announcer(self.database)

        async def biller() -> None:
            # The billers share the queue: each takes the next tenant when it is done with one.
            while (taken := await due.next()) is not None:
                schema, ids = taken
                try:
                    await self._bill((tenants[schema], schema), ids, report, announcer)
                except Exception:
                    logger.exception("billing run: tenant schema %s failed; the next run retries it", schema)
                    report.failed_tenants.append(schema)

        try:
            # A scan that fails (the database, not one schema: ``tenant_scan``) ends the run; its
            # billers are cancelled, which rolls back the tenant each was billing.
            async with asyncio.TaskGroup() as billers:
                for _ in range(max(1, self.concurrency)):
                    billers.create_task(biller())
        finally:
            await announcer.flush()  # what the committed tenants queued
        if report.invoices or report.failed_tenants or report.refused_subscriptions:
            logger.info(
                "billing run: %d subscriptions, %d invoices, %d tenants failed, %d subscriptions refused",
                report.subscriptions,
                report.invoices,
                len(report.failed_tenants),
                report.refused_subscriptions,
            )
        return report

    async def _due(self, schemas: list[str], *, failed: list[str]) -> dict[str, list[int]]:
        def part(schema: str) -> str:
            name = quoted_schema(schema)
            # A row per schema with its ids in an array: a run of 1,000 tenants read 100,000 rows.
            return (
                f"(SELECT '{schema}' AS s, array_agg(d.id) FROM (SELECT s.id FROM {name}.subscriptions s "
                f"JOIN {name}.customers c ON c.id = s.customer_id WHERE {MOVED} "
                f"AND {due_by('now()')} AND c.test_clock_id IS NULL "
                "AND (s.provider IS NULL OR s.provider <> ALL(CAST(:billed AS text[]))) "
                f"ORDER BY {FIRST_DUE} LIMIT {_PER_TENANT}) d HAVING count(*) > 0)"
            )

        # Schemas at tenant_0005 or later (test clocks exist); older ones are not migrated yet.
        params = {"billed": sorted(self.provider_billed)}
        return await tenant_scan.ids_by_schema(
            self.database, schemas, table="test_clocks", part=part, params=params, failed=failed
        )

    async def _bill(
        self, tenant: tuple[int, str], subscription_ids: list[int], report: RunReport, announcer: Announcer
    ) -> None:
        async with self.database.tenant_session(tenant[1]) as session:
            # Still due: a run that went before may have moved some on since ``_due`` read them.
            locked = await lock_due(
                session,
                tenant_id=tenant[0],
                provider_billed=self.provider_billed,
                defaults=self.accounts is not None,
                ids=subscription_ids,
            )
            if locked is None:
                return  # another run holds them, or has billed them
            outcome = await bill_locked(session, locked, locked.now, tenant=tenant)
        await announcer.committed(outcome.announcements)
        report.subscriptions += len(locked.subscriptions)
        report.invoices += len(outcome.invoices)
        report.refused_subscriptions += len(outcome.refused)


class _DueTenants:
    """The run's due tenants, one batch of schemas scanned at a time. The biller that takes the last
    tenant of a batch scans the next batch before billing it, while the other billers go on: a
    run that scanned between batches, with every biller waiting, spent a tenth of its time
    (docs/performance.md, "Billing runs")."""

    def __init__(
        self, scan: Callable[[list[str]], Awaitable[dict[str, list[int]]]], batches: Iterator[list[str]]
    ) -> None:
        self._scan = scan
        self._batches = batches
        self._waiting: deque[tuple[str, list[int]]] = deque()
        self._lock = asyncio.Lock()  # one scan at a time, and none of its tenants handed out twice

    async def next(self) -> tuple[str, list[int]] | None:
        async with self._lock:
            await self._fill()  # the first batch (and any that had nothing due)
            taken = self._waiting.popleft() if self._waiting else None
            await self._fill()  # the next one, while the others bill
            return taken

    async def _fill(self) -> None:
        while not self._waiting and (batch := next(self._batches, None)) is not None:
            self._waiting.extend((await self._scan(batch)).items())
