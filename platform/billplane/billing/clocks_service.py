"""Test clocks: create, read, delete, attach customers, and ask for an advance. Never commits.

A clock is allowed for every tenant; what keeps it to test-mode data is the rule that none of the
provider accounts its customers would be charged through (the tenant's default accounts, the
accounts they are known at or subscribe through) is in live mode, checked when a customer is
attached, again when an advance is asked, and by the worker at each of its steps. A customer is
attached for good, and only before it has any subscription or invoice: its history then lives on
the clock's time from the start.

The advance itself runs in the worker (``clocks_advance``): the request only records where it
stops (the ``test_clock.advancing`` event), marks the clock ``advancing`` and notifies the
workers, whose listener queues the clocks job at once (``billplane.sync.listener``).
"""

from __future__ import annotations

from datetime import datetime

from litestar.exceptions import NotFoundException
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.pagination import page_of
from billplane.api.problems import ConflictError, InvalidFieldError
from billplane.api.types import checked_time
from billplane.billing.clocks_repository import ADVANCING_EVENT, ClockRepository
from billplane.billing.clocks_schemas import TestClock as ClockView
from billplane.billing.clocks_schemas import TestClockAdvance, TestClockAttach, TestClockCreate
from billplane.billing.dunning import charge_refused
from billplane.billing.models import TestClock
from billplane.events.emit import emit
from billplane.invoices.schemas import Invoice as InvoiceView
from billplane.subscriptions.periods import add_interval
from billplane.sync.channel import CLOCKS_CHANNEL

MAX_ADVANCE_YEARS = 2
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


class ClockService:
    def __init__(self, session: AsyncSession, tenant_id: int) -> None:
        self.session = session
        self.tenant_id = tenant_id
        self.repository = ClockRepository(session=session)

    async def create(self, data: TestClockCreate) -> TestClock:
        clock = TestClock(name=data.name, frozen_time=checked_time(data.frozen_time, "frozen_time"), status="ready")
        self.session.add(clock)
        return await self._changed(clock, "test_clock.created")

    async def get(self, clock_id: int) -> tuple[TestClock, datetime | None]:
        clock = await self.repository.find(clock_id)
        if clock is None:  # another tenant's id looks exactly like an id that never existed
            raise NotFoundException(f"no test clock {clock_id}")
        target = await self.repository.target(clock.id) if clock.status == "advancing" else None
        return clock, target

    async def page(self, *, after: int | None, limit: int) -> tuple[list[TestClock], str | None]:
        return page_of(await self.repository.page(after=after, limit=limit), limit)

    async def delete(self, clock_id: int) -> None:
        clock = await self._locked(clock_id)
        self._refuse_advancing(clock, "delete")
        if await self.repository.live_customers(clock.id):
            raise ConflictError("customers are attached to this clock: delete them first (their data lives on it)")
        # Nothing of the clock is charged on real time once it is gone. A first attempt still due
        # (a charge that could not be made when issued, no step since) is refused here, as a step
        # records a charge that cannot be made: left, real-time dunning would make it, then retry.
        # Then every retry is dropped: on the clock's dates, they would all fall due at once. What
        # is open stays open, for the tenant to void or collect.
        for invoice_id in await self.repository.never_attempted(clock.id):
            await charge_refused(
                self.session, invoice_id, f"test clock {clock.id} was deleted before this invoice's first attempt"
            )
        for invoice in await self.repository.stop_retries(clock.id):
            await emit(self.session, "invoice.updated", "invoice", invoice.id, InvoiceView.of(invoice))
        await self.repository.release_deleted_customers(clock.id)
        await emit(self.session, "test_clock.deleted", "test_clock", clock.id, ClockView.of(clock))
        await self.session.delete(clock)
        await self.session.flush()

    async def attach(self, clock_id: int, data: TestClockAttach) -> TestClock:
        clock = await self._locked(clock_id)
        self._refuse_advancing(clock, "take customers")
        if data.customer_id is None:
            raise InvalidFieldError("customer_id", "required")
        customer = await self.repository.customer(data.customer_id)
        if customer is None:
            raise InvalidFieldError("customer_id", f"no customer {data.customer_id}")
        if customer.test_clock_id == clock.id:
            return clock  # attached already: nothing changes
        if customer.test_clock_id is not None:
            raise ConflictError(f"customer {customer.id} is on test clock {customer.test_clock_id} for good")
        if await self.repository.has_billing_history(customer.id):
            raise InvalidFieldError(
                "customer_id", "only a customer without subscriptions or invoices can be put on a test clock"
            )
        known_at = [int(ref["provider_account_id"]) for ref in customer.provider_ids]
        live = await self.repository.live_mode_accounts(self.tenant_id, known_at)
        if live:
            raise InvalidFieldError("customer_id", f"would be charged through live-mode provider account {live[0]}")
        customer.test_clock_id = clock.id
        await self.session.flush()
        data_ = {"test_clock": ClockView.of(clock), "customer_id": customer.id}
        await emit(self.session, "test_clock.customer_attached", "test_clock", clock.id, data_)
        return clock

    async def advance(self, clock_id: int, data: TestClockAdvance) -> tuple[TestClock, datetime]:
        clock = await self._locked(clock_id)
        self._refuse_advancing(clock, "advance again")
        if data.to is None:
            raise InvalidFieldError("to", "required")
        to = checked_time(data.to, "to")
        if to <= clock.frozen_time:
            raise InvalidFieldError("to", f"must be after the clock's frozen_time ({clock.frozen_time.isoformat()})")
        if to > add_interval(clock.frozen_time, "year", MAX_ADVANCE_YEARS):
            raise InvalidFieldError("to", f"at most {MAX_ADVANCE_YEARS} years after the clock's frozen_time")
        live = await self.repository.live_accounts(self.tenant_id, clock.id)
        if live:
            raise ConflictError(f"the clock's customers would be charged through live-mode provider account {live[0]}")
        clock.status = "advancing"
        await self.session.flush()
        await self.session.refresh(clock)
        await emit(self.session, ADVANCING_EVENT, "test_clock", clock.id, ClockView.of(clock, to))
        # Delivered at commit (dropped on rollback): a worker queues the clocks job at once. Missed,
        # the periodic job (every minute) advances the clock all the same.
        await self.session.execute(_NOTIFY, {"channel": CLOCKS_CHANNEL, "payload": str(self.tenant_id)})
        return clock, to

    async def _locked(self, clock_id: int) -> TestClock:
        clock = await self.repository.lock(clock_id)
        if clock is None:
            raise NotFoundException(f"no test clock {clock_id}")
        return clock

    @staticmethod
    def _refuse_advancing(clock: TestClock, what: str) -> None:
        if clock.status == "advancing":
            raise ConflictError(f"the clock is advancing: it cannot {what} until it is ready again")

    async def _changed(self, clock: TestClock, event: str) -> TestClock:
        await self.session.flush()
        await self.session.refresh(clock)
        await emit(self.session, event, "test_clock", clock.id, ClockView.of(clock))
        return clock
