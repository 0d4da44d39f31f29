"""What "now" is for a customer: its test clock's frozen time, or the database's clock.

Test-mode customers attached to a test clock live on that clock, so everything that reads the
time on their behalf (period starts, trials, billing runs, dunning) asks here.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.billing.models import TestClock
from billplane.customers.models import Customer


async def customer_now(session: AsyncSession, test_clock_id: int | None) -> datetime:
    if test_clock_id is not None:
        frozen = await session.scalar(select(TestClock.frozen_time).where(TestClock.id == test_clock_id))
        if frozen is not None:
            return frozen
    now: datetime | None = await session.scalar(select(func.now()))
    assert now is not None  # noqa: S101 - now() always answers
    return now


async def now_of_customer(session: AsyncSession, customer_id: int) -> datetime:
    """``customer_now`` by customer, in one query: what invoice timestamps (finalized, due, paid,
    voided) and dunning's schedule read, so a clocked customer's invoices live on its clock."""
    frozen = (
        select(TestClock.frozen_time)
        .join(Customer, Customer.test_clock_id == TestClock.id)
        .where(Customer.id == customer_id)
        .scalar_subquery()
    )
    now: datetime | None = await session.scalar(select(func.coalesce(frozen, func.now())))
    assert now is not None  # noqa: S101 - now() always answers
    return now
