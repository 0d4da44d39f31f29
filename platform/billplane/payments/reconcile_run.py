"""The periodic reconciliation of payments nobody else will settle, in every tenant.

Found like the dunning run finds due invoices: one UNION ALL read per batch of tenant schemas,
over two partial indexes of pending payments, finding both kinds in one read:

- charges never confirmed (``ix_payments_unconfirmed``: no provider id) whose latest
  ``payment.charge`` row failed at least ``BILLPLANE_PAYMENT_RECONCILE_AFTER_MINUTES`` ago
  (``billplane.payments.reconcile``);
- charges a provider holds as pending (``ix_payments_pending_at_provider``) whose webhook has not
  settled them, asked about at most every ``BILLPLANE_PAYMENT_PENDING_CHECK_MINUTES``
  (``billplane.payments.pending_charges``).

Payments already shown as needing the tenant (``action_required``) are not looked at again. Each
payment is then handled on its own: read, ask the provider outside any transaction, record under
the payment's row lock. A provider that cannot be reached now is asked again later; a failing
tenant is logged and the run goes on. The same run then reconciles refunds
(``billplane.payments.refund_run``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import text

from billplane.db import tenant_scan
from billplane.db.job_owner import TenantGoneError, owned_session
from billplane.payments import pending_charges
from billplane.payments.lookup import AccountGoneError, PaymentLookup
from billplane.payments.models import Payment
from billplane.payments.pending_charges import PendingCharge, pending_charge
from billplane.payments.reconcile import (
    CHARGE_KIND,
    Recorded,
    Unconfirmed,
    account_gone,
    cannot_ask,
    mark_asked,
    record_lookup,
    require_action,
    unconfirmed,
)
from billplane.payments.refund_run import RefundReconciliation, RefundReport
from billplane.plugins.contract import ChargeResult
from billplane.plugins.errors import ProviderError
from billplane.settings import PendingChecks
from billplane_tenants import Database
from billplane_tenants.naming import quoted_schema

logger = logging.getLogger("billplane.payments")
_PER_TENANT = 100
# Schemas are asked only once they have this index (tenant_0009): older ones lack provider_checked_at.
_INDEX = "ix_payments_pending_at_provider"


def _due_sql(schema: str) -> str:
    """One read for both kinds (a second would almost double the job's cost per tenant): charges
    never confirmed (no provider id) whose latest charge row failed ``settle_after`` ago, and
    charges pending at the provider not asked about for ``PendingChecks.every``. Each arm repeats
    its partial index's predicate, so that either index can serve it. Least recently asked first:
    payments whose provider keeps not answering cannot hold back the rest of a tenant's."""
    name = quoted_schema(schema)
    return (
        f"(SELECT '{schema}' AS s, p.id FROM {name}.payments p WHERE p.action_required IS NULL AND ("
        "(p.status = 'pending' AND p.provider_payment_id IS NULL "
        f"AND (SELECT o.status = 'failed' AND o.done_at <= now() - make_interval(secs => :settle) "
        f"FROM {name}.outbox o WHERE o.kind = '{CHARGE_KIND}' AND o.object_id = p.id "
        "ORDER BY o.id DESC LIMIT 1)) "
        "OR (p.status = 'pending' AND p.provider_payment_id IS NOT NULL "
        "AND coalesce(p.provider_checked_at, p.created_at) <= now() - make_interval(secs => :every))) "
        f"ORDER BY coalesce(p.provider_checked_at, p.created_at), p.id LIMIT {_PER_TENANT})"
    )


@dataclass(slots=True)
class ReconcileReport:
    settled: int = 0  # found at the provider, or certainly never charged: recorded
    action_required: int = 0  # shown to the tenant: the provider cannot be asked, or nothing settled it in time
    unanswered: int = 0  # the provider could not answer now: asked again (next run, or after the interval)
    still_pending: int = 0  # held as pending by the provider, asked about again later
    failed_tenants: list[str] = field(default_factory=list)
    refunds: RefundReport = field(default_factory=RefundReport)


@dataclass(slots=True)
class PaymentReconciliation:
    database: Database
    lookup: PaymentLookup
    settle_after: timedelta = timedelta(minutes=10)
    pending: PendingChecks = field(default_factory=PendingChecks)

    async def run(self) -> ReconcileReport:
        report = ReconcileReport()
        tenants = await tenant_scan.active_tenants(self.database)
        for batch in tenant_scan.batches(list(tenants)):
            found = await tenant_scan.ids_by_schema(
                self.database,
                batch,
                table=_INDEX,
                part=_due_sql,
                params={"settle": self.settle_after.total_seconds(), "every": self.pending.every.total_seconds()},
            )
            for schema, ids in found.items():
                failures = 0
                for payment_id in ids:  # one payment's failure does not hold back the tenant's others
                    try:
                        await self._act(report, (tenants[schema], schema), payment_id)
                    except TenantGoneError:
                        break  # deleted since the scan: nothing of it is left to settle
                    except Exception:
                        logger.exception("payment reconciliation: payment %s of %s failed; retried", payment_id, schema)
                        failures += 1
                if failures:
                    report.failed_tenants.append(schema)
        if report.settled or report.action_required or report.unanswered or report.failed_tenants:
            logger.info(
                "payment reconciliation: %d settled, %d need the tenant, %d unanswered, %d still pending, "
                "%d tenants failed",
                report.settled,
                report.action_required,
                report.unanswered,
                report.still_pending,
                len(report.failed_tenants),
            )
        refunds = RefundReconciliation(self.database, self.lookup, self.settle_after, self.pending)
        report.refunds = await refunds.run(tenants)
        return report

    async def _act(self, report: ReconcileReport, tenant: tuple[int, str], payment_id: int) -> None:
        tenant_id = tenant[0]
        async with owned_session(self.database, *tenant) as session:
            payment = await session.get(Payment, payment_id)
            now: datetime = (await session.execute(text("SELECT now()"))).scalar_one()
            if payment is None or payment.action_required is not None:
                return
            held = pending_charge(payment)
            stuck = None
            if held is None:
                stuck = await unconfirmed(session, tenant_id, payment, settle_after=self.settle_after, now=now)
        if held is not None:
            await self._check_pending(report, tenant, held, now)
        elif isinstance(stuck, Unconfirmed):
            await self._reconcile(report, tenant, stuck)
        # else settled or retried since the scan

    async def _reconcile(self, report: ReconcileReport, tenant: tuple[int, str], stuck: Unconfirmed) -> None:
        tenant_id, schema = tenant
        payment_id = stuck.payment_id
        if not self.lookup.can_look_up(stuck.provider):
            async with owned_session(self.database, *tenant) as session:
                report.action_required += await require_action(session, payment_id, cannot_ask(stuck.provider))
            return
        try:
            found = await self.lookup.find(stuck, tenant_id)
        except AccountGoneError:  # nobody can ask through it any more: the tenant settles it (/resolve)
            async with owned_session(self.database, *tenant) as session:
                report.action_required += await require_action(session, payment_id, account_gone(stuck))
            return
        except ProviderError as exc:  # unreachable again, or refused: never guess, ask next run
            logger.warning("payment %s of %s: the provider could not be asked: %s", payment_id, schema, exc.message)
            report.unanswered += 1
            async with owned_session(self.database, *tenant) as session:
                await mark_asked(session, payment_id)  # to the back of the tenant's queue: see _due_sql
            return
        async with owned_session(self.database, *tenant) as session:
            recorded = await record_lookup(session, payment_id, found)
        report.settled += recorded == "settled"
        report.action_required += recorded == "action_required"

    async def _check_pending(
        self, report: ReconcileReport, tenant: tuple[int, str], charge: PendingCharge, now: datetime
    ) -> None:
        answer = await self._ask(report, charge, tenant)
        after = self.pending.flag_after
        recorded: Recorded
        async with owned_session(self.database, *tenant) as session:
            if isinstance(answer, _NoAnswer) and answer.account_gone:  # nobody can ask through it: shown now
                flagged = await pending_charges.require_action(session, charge, answer.why)
                recorded = "action_required" if flagged else "unchanged"
            elif isinstance(answer, _NoAnswer):
                recorded = await pending_charges.no_answer(session, charge, now=now, flag_after=after, why=answer.why)
            else:
                recorded = await pending_charges.record_answer(session, charge, answer, now=now, flag_after=after)
        report.settled += recorded == "settled"
        report.action_required += recorded == "action_required"
        report.still_pending += isinstance(answer, ChargeResult) and answer.status == "pending"

    async def _ask(
        self, report: ReconcileReport, charge: PendingCharge, tenant: tuple[int, str]
    ) -> ChargeResult | _NoAnswer | None:
        """How the provider says the charge stands, or why there is no answer."""
        tenant_id, schema = tenant
        if not await self.lookup.can_ask(charge, tenant_id):
            if self.lookup.can_read_status(charge.provider):  # it could be asked, but its account is gone
                return _NoAnswer(pending_charges.account_gone(charge), account_gone=True)
            return _NoAnswer(pending_charges.cannot_ask(charge))
        try:
            return await self.lookup.status(charge, tenant_id)
        except AccountGoneError:  # deleted since can_ask
            return _NoAnswer(pending_charges.account_gone(charge), account_gone=True)
        except ProviderError as exc:
            logger.warning(
                "payment %s of %s: the provider could not be asked: %s", charge.payment_id, schema, exc.message
            )
            report.unanswered += 1
            return _NoAnswer(pending_charges.unanswered(charge, exc.message))
        except Exception:  # an adapter's own bug: like no answer, so it is asked hourly and shown in time
            logger.exception("payment %s of %s: asking the provider failed", charge.payment_id, schema)
            report.unanswered += 1
            return _NoAnswer(pending_charges.unanswered(charge, "the provider's plugin failed (see the logs)"))


@dataclass(frozen=True, slots=True)
class _NoAnswer:
    why: str
    account_gone: bool = False  # then nobody can ever ask: the tenant is shown it at once
