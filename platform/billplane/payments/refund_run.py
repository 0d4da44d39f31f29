"""The refunds part of the periodic reconciliation, in every tenant (``billplane.payments.pending_refunds``).

One read per batch of tenant schemas over the partial index ``ix_refunds_pending``, finding both
kinds: refunds never confirmed (no provider id) whose latest ``refund.create`` row failed at least
``BILLPLANE_PAYMENT_RECONCILE_AFTER_MINUTES`` ago, looked up (``billplane.payments.lost_refunds``),
and refunds the provider holds as pending not asked about for
``BILLPLANE_PAYMENT_PENDING_CHECK_MINUTES``. Refunds already shown to the tenant are not looked at
again. Each refund is then handled on its own: read, ask the provider outside
any transaction, record under the refund's row lock. A failing refund is logged and the rest go on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import text

from billplane.db import tenant_scan
from billplane.db.job_owner import TenantGoneError, owned_session
from billplane.payments import lost_refunds, pending_refunds
from billplane.payments.lookup import AccountGoneError, PaymentLookup
from billplane.payments.models import Payment, Refund
from billplane.payments.pending_refunds import REFUND_KIND, HeldRefund, LostRefund, held_refund
from billplane.payments.reconcile import Recorded
from billplane.plugins.contract import RefundResult
from billplane.plugins.errors import ProviderError, RetryableProviderError
from billplane.settings import PendingChecks
from billplane_tenants import Database
from billplane_tenants.naming import quoted_schema

logger = logging.getLogger("billplane.payments")
_PER_TENANT = 100
# Schemas are asked only once they have this index (tenant_0010): older ones lack the columns read.
_INDEX = "ix_refunds_pending"


def _due_sql(schema: str) -> str:
    """Least recently asked first, as for payments: refunds whose provider keeps not answering
    cannot hold back the rest of a tenant's."""
    name = quoted_schema(schema)
    return (
        f"(SELECT '{schema}' AS s, r.id FROM {name}.refunds r WHERE r.status = 'pending' "
        "AND r.action_required IS NULL AND ("
        "(r.provider_refund_id IS NULL "
        f"AND (SELECT o.status = 'failed' AND o.done_at <= now() - make_interval(secs => :settle) "
        f"FROM {name}.outbox o WHERE o.kind = '{REFUND_KIND}' AND o.object_id = r.id "
        "ORDER BY o.id DESC LIMIT 1)) "
        "OR (r.provider_refund_id IS NOT NULL "
        "AND coalesce(r.provider_checked_at, r.created_at) <= now() - make_interval(secs => :every))) "
        f"ORDER BY coalesce(r.provider_checked_at, r.created_at), r.id LIMIT {_PER_TENANT})"
    )


@dataclass(slots=True)
class RefundReport:
    settled: int = 0  # the provider's settled answer, or what a lookup found (or that it found none), recorded
    action_required: int = 0  # shown to the tenant: never confirmed, cannot be asked, or nothing settled it in time
    unanswered: int = 0  # the provider could not answer now: asked again after the interval
    failed_tenants: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _NoAnswer:
    why: str
    # Asking again will not help (the account is gone; or, for a refund never confirmed, the provider
    # refused to say): the tenant is shown it at once.
    show_now: bool = False


@dataclass(slots=True)
class RefundReconciliation:
    database: Database
    lookup: PaymentLookup
    settle_after: timedelta
    pending: PendingChecks

    async def run(self, tenants: dict[str, int]) -> RefundReport:
        report = RefundReport()
        params = {"settle": self.settle_after.total_seconds(), "every": self.pending.every.total_seconds()}
        for batch in tenant_scan.batches(list(tenants)):
            found = await tenant_scan.ids_by_schema(self.database, batch, table=_INDEX, part=_due_sql, params=params)
            for schema, ids in found.items():
                failures = 0
                for refund_id in ids:
                    try:
                        await self._act(report, (tenants[schema], schema), refund_id)
                    except TenantGoneError:
                        break  # deleted since the scan: nothing of it is left to settle
                    except Exception:
                        logger.exception("refund reconciliation: refund %s of %s failed; retried", refund_id, schema)
                        failures += 1
                if failures:
                    report.failed_tenants.append(schema)
        if report.settled or report.action_required or report.unanswered or report.failed_tenants:
            logger.info(
                "refund reconciliation: %d settled, %d need the tenant, %d unanswered, %d tenants failed",
                report.settled,
                report.action_required,
                report.unanswered,
                len(report.failed_tenants),
            )
        return report

    async def _act(self, report: RefundReport, tenant: tuple[int, str], refund_id: int) -> None:
        async with owned_session(self.database, *tenant) as session:
            refund = await session.get(Refund, refund_id)
            now: datetime = (await session.execute(text("SELECT now()"))).scalar_one()
            if refund is None or refund.action_required is not None:
                return
            payment = await session.get(Payment, refund.payment_id)
            held = held_refund(refund, payment) if payment is not None else None
        if held is None:
            return
        recorded = await (
            self._look_up(report, tenant, held, now)
            if held.provider_refund_id is None
            else self._check(report, tenant, held, now)
        )
        report.settled += recorded == "settled"
        report.action_required += recorded == "action_required"

    async def _check(self, report: RefundReport, tenant: tuple[int, str], held: HeldRefund, now: datetime) -> Recorded:
        """A refund the provider holds as pending: how it stands now."""
        answer = await self._ask(report, held, tenant)
        after = self.pending.flag_after
        async with owned_session(self.database, *tenant) as session:
            if isinstance(answer, _NoAnswer) and answer.show_now:
                return await pending_refunds.require_action(session, held, answer.why)
            if isinstance(answer, _NoAnswer):
                return await pending_refunds.no_answer(session, held, now=now, flag_after=after, why=answer.why)
            return await pending_refunds.record_answer(session, held, answer, now=now, flag_after=after)

    async def _look_up(
        self, report: RefundReport, tenant: tuple[int, str], held: HeldRefund, now: datetime
    ) -> Recorded:
        """A refund never confirmed: whether the provider made it, where it can be asked."""
        tenant_id = tenant[0]
        async with owned_session(self.database, *tenant) as session:
            lost = await lost_refunds.lost_refund(session, tenant_id, held, settle_after=self.settle_after, now=now)
        if isinstance(lost, lost_refunds.NotLost):
            return "unchanged"  # retried, or settled, since the scan
        answer = await self._ask(report, lost, tenant)
        async with owned_session(self.database, *tenant) as session:
            if isinstance(answer, _NoAnswer) and (answer.show_now or not self.lookup.capable(lost)):
                why = answer.why if answer.show_now else pending_refunds.never_confirmed(held, lost.last_error)
                return await pending_refunds.require_action(session, held, why)
            if isinstance(answer, _NoAnswer):
                after = self.pending.flag_after
                return await lost_refunds.no_answer(session, held, now=now, flag_after=after, why=answer.why)
            return await lost_refunds.record_found(session, held, answer)

    async def _ask(
        self, report: RefundReport, held: HeldRefund | LostRefund, tenant: tuple[int, str]
    ) -> RefundResult | _NoAnswer | None:
        """How the provider says the refund stands (``refund_status``), or the refund it made of a
        request whose answer was lost (``find_refund``); or why there is no answer."""
        tenant_id, schema = tenant
        if not await self.lookup.can_ask(held, tenant_id):
            if self.lookup.capable(held):  # it could be asked, but its account is gone
                return _NoAnswer(pending_refunds.account_gone(held), show_now=True)
            return _NoAnswer(pending_refunds.cannot_ask(held))
        try:
            return await self._call(held, tenant_id)
        except AccountGoneError:  # deleted since can_ask
            return _NoAnswer(pending_refunds.account_gone(held), show_now=True)
        except ProviderError as exc:
            logger.warning("refund %s of %s: the provider could not be asked: %s", held.refund_id, schema, exc.message)
            answer = _no_answer(held, exc)
            report.unanswered += not answer.show_now
            return answer
        except Exception:  # an adapter's own bug: like no answer, so it is asked again and shown in time
            logger.exception("refund %s of %s: asking the provider failed", held.refund_id, schema)
            report.unanswered += 1
            return _NoAnswer(pending_refunds.unanswered(held, "the provider's plugin failed (see the logs)"))

    async def _call(self, asked: HeldRefund | LostRefund, tenant_id: int) -> RefundResult | None:
        if isinstance(asked, LostRefund):
            return await self.lookup.find_refund(asked, tenant_id)
        return await self.lookup.refund_status(asked, tenant_id)


def _no_answer(asked: HeldRefund | LostRefund, error: ProviderError) -> _NoAnswer:
    if isinstance(asked, LostRefund) and not isinstance(error, RetryableProviderError):
        # A refusal (a revoked key, a payment it cannot list) would repeat every run: only the tenant can act.
        return _NoAnswer(lost_refunds.refused(asked, error.message), show_now=True)
    return _NoAnswer(pending_refunds.unanswered(asked, error.message))
