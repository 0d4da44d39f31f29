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
from billplane.provider_accounts.models import ProviderAccount


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


async def live_account_for_clock(
    session: AsyncSession, tenant_id: int, test_clock_id: int | None, account_id: int
) -> str | None:
    """Why a customer on test clock ``test_clock_id`` cannot be charged through ``account_id``, or
    None: a clock's customers are test data, never charged through a live-mode account (an advance
    checks it at each step; a request that would charge one at once checks it here)."""
    if test_clock_id is None:
        return None
    mode = await session.scalar(
        select(ProviderAccount.mode).where(ProviderAccount.id == account_id, ProviderAccount.tenant_id == tenant_id)
    )
    if mode != "live":
        return None
    return (
        f"provider account {account_id} is in live mode, and the customer is on test clock {test_clock_id}: "
        "a test clock's customers are never charged through a live-mode account"
    )
