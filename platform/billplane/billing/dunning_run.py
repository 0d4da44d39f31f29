"""The dunning run: every invoice whose retry is due, in every active tenant, charged again, and
every subscription invoice whose first charge could not be made, charged for the first time.

Found like the billing run finds due subscriptions: one UNION ALL read per batch of tenant schemas,
over the partial index ``ix_invoices_payment_due`` (open invoices by next attempt; the never
attempted ones are among its NULLs). Each invoice is
then retried in its tenant's own transaction, locked with SKIP LOCKED so two runs at once share
the work; the retry's charge goes through the outbox like any payment, so a crash charges at most
once. A failing tenant is logged and the run goes on. Customers on a test clock are left to their
clock (``billplane.billing.clocks_advance``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import text

from billplane.billing.dunning_retry import retry
from billplane.db import tenant_scan
from billplane.provider_accounts.resolved import AccountSource
from billplane.sync.accounts import DefaultAccountCache
from billplane.sync.queue import JobQueue
from billplane_tenants import Database
from billplane_tenants.naming import quoted_schema

logger = logging.getLogger("billplane.billing")
_PER_TENANT = 1000


def _due_sql(schema: str) -> str:
    name = quoted_schema(schema)
    return (
        f"(SELECT '{schema}' AS s, i.id FROM {name}.invoices i "
        f"JOIN {name}.customers c ON c.id = i.customer_id "
        "WHERE i.status = 'open' AND c.test_clock_id IS NULL AND (i.next_payment_attempt_at <= now() "
        # Never attempted (dunning_retry.due): its first charge could not be made.
        "OR (i.next_payment_attempt_at IS NULL AND i.attempt_count = 0 AND i.subscription_id IS NOT NULL "
        "AND i.provider_invoice_id IS NULL "
        f"AND NOT EXISTS (SELECT 1 FROM {name}.payments p WHERE p.invoice_id = i.id))) "
        f"AND NOT EXISTS (SELECT 1 FROM {name}.payments p WHERE p.invoice_id = i.id AND p.status = 'pending') "
        f"ORDER BY i.next_payment_attempt_at NULLS FIRST LIMIT {_PER_TENANT})"
    )


@dataclass(slots=True)
class DunningReport:
    retried: int = 0
    failed_tenants: list[str] = field(default_factory=list)


@dataclass(slots=True)
class DunningRun:
    database: Database
    queue: JobQueue
    accounts: AccountSource | None
    defaults: DefaultAccountCache = field(default_factory=DefaultAccountCache)

    async def run(self) -> DunningReport:
        report = DunningReport()
        tenants = await tenant_scan.active_tenants(self.database)
        for batch in tenant_scan.batches(list(tenants)):
            due = await self._due(batch)
            for schema, ids in due.items():
                try:
                    report.retried += await self._retry((tenants[schema], schema), ids)
                except Exception:
                    logger.exception("dunning run: tenant schema %s failed; the next run retries it", schema)
                    report.failed_tenants.append(schema)
        if report.retried or report.failed_tenants:
            failed = len(report.failed_tenants)
            logger.info("dunning run: %d invoices retried, %d tenants failed", report.retried, failed)
        return report

    async def _due(self, schemas: list[str]) -> dict[str, list[int]]:
        return await tenant_scan.ids_by_schema(self.database, schemas, table="billing_settings", part=_due_sql)

    async def _retry(self, tenant: tuple[int, str], invoice_ids: list[int]) -> int:
        retried = 0
        for invoice_id in invoice_ids:
            async with self.database.tenant_session(tenant[1]) as session:
                now = (await session.execute(text("SELECT now()"))).scalar_one()
                retried += await retry(
                    session,
                    invoice_id,
                    now,
                    tenant=tenant,
                    queue=self.queue,
                    accounts=self.accounts,
                    defaults=self.defaults,
                )
        return retried
