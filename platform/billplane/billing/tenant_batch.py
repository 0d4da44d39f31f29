"""One tenant's locked subscriptions billed: moved on, invoiced and charged.

What the billing run does for each tenant, and a test clock's step for its customers, in the
caller's transaction: four statements after the lock whatever the number of subscriptions (plans,
pending prorations when there are any, the writes, the events and charges), plus one for the tiers
of tiered plans, one per metered subscription for its usage, and one releasing the credits of
those that ended (``customer_credit``), and one queueing the provider resumes of mirrored
subscriptions that resumed, when any did (``recording``). The outcome says what to announce
to the workers (``announcing``).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from billplane.billing.collection import charges
from billplane.billing.cycle import Outcome, advance_all
from billplane.billing.driver import driver_of
from billplane.billing.locked import Locked
from billplane.billing.recording import record

logger = logging.getLogger("billplane.billing")


async def bill_locked(session: AsyncSession, locked: Locked, now: datetime, *, tenant: tuple[int, str]) -> Outcome:
    """Every boundary of the ``locked`` subscriptions up to ``now``, with their invoices' charges."""
    driver = await driver_of(session)
    outcome = await advance_all(driver, locked, now)
    for subscription_id, reason in outcome.refused.items():
        # No traceback: the message says which subscription of which tenant, and why.
        logger.error("billing: subscription %s of %s left due and unbilled: %s", subscription_id, tenant[1], reason)
    chosen = charges(outcome.invoices, tenant[1])
    outcome.announcements = await record(
        driver, outcome.events, chosen, tenant, endpoints=locked.endpoints, resumed=outcome.resumed
    )
    return outcome
