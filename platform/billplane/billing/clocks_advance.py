"""Advancing test clocks, in the worker: what would have happened, boundary by boundary.

A clock marked ``advancing`` moves in steps. Each step, in one transaction of the tenant holding the
clock's row (SKIP LOCKED: two workers never step one clock at once), goes to the next moment
something is due for the clock's customers (a period end, which is also where trials end; a
paused subscription's ``resume_at``; or a dunning retry), never past the target, and there runs the billing run's
``bill_locked`` and the dunning retries due, with the clock's time as "now". Once it
commits, the step's charges are performed here and now through the outbox (the same rows and
idempotency keys the worker would use), so that a failure is settled, and its retry scheduled, on
the step's time before the clock moves on. A charge whose outbox row is still pending (a transient
provider error) holds the clock until it is done; the next run goes on from there.

No step charges a live-mode account: the rule the advance request checked (``clocks_service``)
is checked again at the end of each step, over the accounts of the charges it wrote too. A step
that breaks it is rolled back whole, and the advance stops there (``test_clock.advance_failed``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.billing.announcing import announce
from billplane.billing.clocks_repository import FAILED_EVENT, ClockRepository
from billplane.billing.clocks_schemas import TestClock as ClockView
from billplane.billing.clocks_schemas import TestClockAdvanceFailed
from billplane.billing.driver import driver_of
from billplane.billing.dunning_retry import never_attempted, retry
from billplane.billing.locked import lock_due, moved_clause
from billplane.billing.models import TestClock
from billplane.billing.tenant_batch import bill_locked
from billplane.customers.models import Customer
from billplane.db import tenant_scan
from billplane.events.emit import emit
from billplane.invoices.models import Invoice
from billplane.payments.models import Payment
from billplane.provider_accounts.resolved import AccountSource
from billplane.subscriptions.models import Subscription
from billplane.sync.accounts import DefaultAccountCache
from billplane.sync.models import OutboxEntry
from billplane.sync.performer import OutboxPerformer
from billplane.sync.queue import JobQueue
from billplane.sync.refs import OutboxRef
from billplane_tenants import Database
from billplane_tenants.naming import quoted_schema

logger = logging.getLogger("billplane.billing")
_MAX_STEPS = 1000  # per clock per run: the next run goes on


@dataclass(slots=True)
class _Step:
    charges: list[int]
    finished: bool


class _LiveAccountError(Exception):
    """A step found a live-mode account its clock's customers would be charged through."""

    def __init__(self, account_id: int) -> None:
        super().__init__(account_id)
        self.account_id = account_id


@dataclass(slots=True)
class ClockAdvancer:
    database: Database
    queue: JobQueue
    accounts: AccountSource | None
    performer: OutboxPerformer
    defaults: DefaultAccountCache = field(default_factory=DefaultAccountCache)
    provider_billed: frozenset[str] = frozenset()  # as BillingRun: left to the provider that bills them

    async def run(self) -> int:
        """Advance every advancing clock of every active tenant; returns the steps taken."""
        tenants, steps = await tenant_scan.active_tenants(self.database), 0
        for batch in tenant_scan.batches(list(tenants)):
            for schema, clock_id in await self._advancing(batch):
                try:
                    steps += await self.advance((tenants[schema], schema), clock_id)
                except Exception:
                    logger.exception("test clock %s of %s failed to advance; the next run retries it", clock_id, schema)
        return steps

    async def _advancing(self, schemas: list[str]) -> list[tuple[str, int]]:
        def part(schema: str) -> str:
            return f"(SELECT '{schema}' AS s, id FROM {quoted_schema(schema)}.test_clocks WHERE status = 'advancing')"

        found = await tenant_scan.ids_by_schema(self.database, schemas, table="test_clocks", part=part)
        return [(schema, clock_id) for schema, ids in found.items() for clock_id in ids]

    async def advance(self, tenant: tuple[int, str], clock_id: int) -> int:
        """Step one clock until it is ready, held by a pending charge, or out of steps for this run."""
        steps = 0
        while steps < _MAX_STEPS:
            step = await self._step(tenant, clock_id)
            if step is None:
                break
            steps += 1
            for outbox_id in step.charges:
                await self.performer.perform(OutboxRef(tenant[0], tenant[1], outbox_id))
            if step.finished:
                break
        return steps

    async def _step(self, tenant: tuple[int, str], clock_id: int) -> _Step | None:
        try:
            return await self._stepped(tenant, clock_id)
        except _LiveAccountError as live:
            await self._stop(tenant, clock_id, live.account_id)
            return None

    async def _stepped(self, tenant: tuple[int, str], clock_id: int) -> _Step | None:
        async with self.database.tenant_session(tenant[1]) as session:
            repository = ClockRepository(session=session)
            clock = await repository.lock(clock_id, skip_locked=True)
            if clock is None or clock.status != "advancing":
                return None  # another worker steps it, or it is ready
            if await _charges(session, clock_id):
                return None  # a charge of the last step is not settled yet
            target = await repository.target(clock_id)
            step = await self._moved(session, tenant, clock, target)
            # The advance was allowed when asked, but an account may have gone live for the clock's
            # customers since (a live account made the default, or one they became known at),
            # even while this step ran: checked last, with the accounts of the charges it wrote.
            # Any live one rolls the whole step back, so none of its charges is ever made.
            if live := await repository.live_accounts(tenant[0], clock_id):
                raise _LiveAccountError(live[0])
            if step.finished:
                clock.status = "ready"
                await session.flush()
                await session.refresh(clock)
                await emit(session, "test_clock.ready", "test_clock", clock.id, ClockView.of(clock))
            return step

    async def _moved(
        self, session: AsyncSession, tenant: tuple[int, str], clock: TestClock, target: datetime | None
    ) -> _Step:
        # What is due at the clock's time already (an unpaid subscription paid after its period
        # ended restarts its cycle at that moment, ``dunning``): billed here, its next period
        # end is the next step. Left for the next due time, every boundary up to it was billed
        # there at once.
        await self._bill(session, tenant, clock.id, clock.frozen_time)
        if charges := await _charges(session, clock.id):
            return _Step(charges=charges, finished=False)  # settled at this time, before it moves
        due = await _next_due(session, clock.id, clock.frozen_time, self.provider_billed)
        now = target if target is None or due is None else min(due, target)
        if now is None or now < clock.frozen_time:
            now = clock.frozen_time  # no target recorded (or behind): stop where it is
        clock.frozen_time = now
        await session.flush()
        await self._bill(session, tenant, clock.id, now)
        await self._retry(session, tenant, clock.id, now)
        charges = await _charges(session, clock.id)
        # Ready once the target's charges are settled too, in a step of its own after they
        # run: a client that waits for test_clock.ready reads the invoices as they end up.
        return _Step(charges=charges, finished=(target is None or now >= target) and not charges)

    async def _stop(self, tenant: tuple[int, str], clock_id: int, account_id: int) -> None:
        """End the advance where the clock stands (the last step that went through), ``ready``
        again, with ``test_clock.advance_failed`` saying why: retried, every step would fail the
        same, and an ``advancing`` clock can be neither advanced again nor deleted."""
        reason = f"the clock's customers would be charged through live-mode provider account {account_id}"
        async with self.database.tenant_session(tenant[1]) as session:
            repository = ClockRepository(session=session)
            clock = await repository.lock(clock_id, skip_locked=True)
            if clock is None or clock.status != "advancing":
                return  # stopped by another worker, whose step found the same
            target = await repository.target(clock_id)
            clock.status = "ready"
            await session.flush()
            await session.refresh(clock)
            data = TestClockAdvanceFailed(test_clock=ClockView.of(clock), advancing_to=target, reason=reason)
            await emit(session, FAILED_EVENT, "test_clock", clock.id, data)
            stopped_at = clock.frozen_time
        logger.warning("test clock %s of %s stopped at %s: %s", clock_id, tenant[1], stopped_at.isoformat(), reason)

    def _services(self) -> dict[str, Any]:
        return {"queue": self.queue, "accounts": self.accounts, "defaults": self.defaults}

    async def _bill(self, session: AsyncSession, tenant: tuple[int, str], clock_id: int, now: datetime) -> None:
        locked = await lock_due(
            session,
            tenant_id=tenant[0],
            provider_billed=self.provider_billed,
            defaults=self.accounts is not None,
            clock_id=clock_id,
            until=now,
        )
        if locked is not None:
            outcome = await bill_locked(session, locked, now, tenant=tenant)
            # In the step's transaction (delivered at its commit): a clock's step is one tenant's.
            await announce(await driver_of(session), outcome.announcements)

    async def _retry(self, session: AsyncSession, tenant: tuple[int, str], clock_id: int, now: datetime) -> None:
        """The retries due, and the first attempts of invoices the step's billing could not charge."""
        query = (
            select(Invoice.id)
            .join(Customer, Customer.id == Invoice.customer_id)
            .where(
                Customer.test_clock_id == clock_id,
                Invoice.status == "open",
                or_(Invoice.next_payment_attempt_at <= now, never_attempted()),
            )
            .order_by(Invoice.next_payment_attempt_at.nulls_first(), Invoice.id)
        )
        for invoice_id in list((await session.execute(query)).scalars()):
            await retry(session, invoice_id, now, tenant=tenant, **self._services())


async def _next_due(
    session: AsyncSession, clock_id: int, after: datetime, provider_billed: frozenset[str]
) -> datetime | None:
    """The first moment after ``after`` when something is due for the clock's customers: a period
    end (an unpaid subscription's too, when it is set to cancel there), a paused subscription's
    ``resume_at`` (it resumes then, ``cycle``), a retry. Those of subscriptions a provider bills
    (``provider_billed``) are not: the lock leaves them to it, so a step there would bill nothing."""
    clocked = (
        Customer.test_clock_id == clock_id,
        or_(Subscription.provider.is_(None), Subscription.provider.not_in(sorted(provider_billed))),
    )
    period_end = (
        select(func.min(Subscription.current_period_end))
        .join(Customer, Customer.id == Subscription.customer_id)
        .where(*clocked, moved_clause(), Subscription.current_period_end > after)
        .scalar_subquery()
    )
    resume_at = (
        select(func.min(Subscription.resume_at))
        .join(Customer, Customer.id == Subscription.customer_id)
        .where(*clocked, Subscription.status == "paused", Subscription.resume_at > after)
        .scalar_subquery()
    )
    retry_due = (
        select(func.min(Invoice.next_payment_attempt_at))
        .join(Customer, Customer.id == Invoice.customer_id)
        .where(Customer.test_clock_id == clock_id, Invoice.status == "open", Invoice.next_payment_attempt_at > after)
        .scalar_subquery()
    )
    first: datetime | None = await session.scalar(select(func.least(period_end, resume_at, retry_due)))
    return first


async def _charges(session: AsyncSession, clock_id: int) -> list[int]:
    """Outbox rows of the clock's customers' charges not performed yet."""
    query = (
        select(OutboxEntry.id)
        .join(Payment, Payment.id == OutboxEntry.object_id)
        .join(Customer, Customer.id == Payment.customer_id)
        .where(OutboxEntry.kind == "payment.charge", OutboxEntry.status == "pending")
        .where(Customer.test_clock_id == clock_id)
        .order_by(OutboxEntry.id)
    )
    return list((await session.execute(query)).scalars())
