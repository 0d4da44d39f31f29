"""A plan or quantity change made now, once checked: what it prorates from and against.

A proration credits the unused time of what the current period was billed at and charges the
rest of it at the new plan and quantity. What the period was billed at is the subscription's plan
and quantity, unless a change without proration made them differ in this period: then the
``billed_*`` columns keep what was paid, and a later proration credits that (crediting the plan
set since would give back money never paid). A proration starts now, or at the ``proration_date``
asked (Stripe's, to apply exactly what a preview showed), never earlier than the time already
prorated at other prices or never paid for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import msgspec

from billplane.api.problems import InvalidFieldError
from billplane.api.types import checked_time
from billplane.catalog.models import Plan
from billplane.pricing import LineDraft, Period, PlanPricing, PricingError, change_preview
from billplane.subscriptions.models import Subscription
from billplane.subscriptions.repository import SubscriptionRepository
from billplane.subscriptions.schemas import SubscriptionUpdate


@dataclass(frozen=True, slots=True)
class Change:
    """A plan or quantity change, checked: the plans from and to, the new quantity, and whether
    billplane prorates it now (``create_prorations``, past a trial, a subscription it bills)."""

    current: Plan
    new: Plan
    quantity: int
    prorated: bool
    period: Period | None  # the current one (None: not set yet)
    billed: tuple[Plan, int]  # what the period was billed at: a proration credits its unused time
    at: datetime  # when it prorates from: now, or the proration_date asked


async def billed_basis(
    repository: SubscriptionRepository, subscription: Subscription, current: Plan
) -> tuple[Plan, int]:
    """The plan and quantity the current period was billed at: those a change without proration
    left behind in this period, else the subscription's own."""
    plan_id, quantity = subscription.billed_plan_id, subscription.billed_quantity
    if plan_id is None or quantity is None or subscription.billed_period_start != subscription.current_period_start:
        return current, subscription.quantity
    billed = current if plan_id == current.id else await repository.plan(plan_id)
    return (current, subscription.quantity) if billed is None else (billed, quantity)


def keep_billed(subscription: Subscription, change: Change, *, billed_here: bool) -> None:
    """Remember what the current period was billed at before a change that bills nothing now, or
    forget it after one that billed the rest of the period at the new plan and quantity.
    ``billed_here``: billplane bills the subscription (not its provider)."""
    if change.prorated:
        subscription.billed_plan_id = subscription.billed_quantity = subscription.billed_period_start = None
    elif change.period is not None and subscription.status != "trialing" and billed_here:  # a trial billed nothing
        # After an earlier change of the period, change.billed is what that one kept: kept again.
        subscription.billed_plan_id, subscription.billed_quantity = change.billed[0].id, change.billed[1]
        subscription.billed_period_start = change.period.start


async def prorated_at(
    repository: SubscriptionRepository, subscription: Subscription, data: SubscriptionUpdate, now: datetime
) -> datetime:
    """When a change prorates from: ``now`` (the subscription's), or the ``proration_date`` asked.
    Not after now (a proration of time to come would be billed again by the next change), not
    before the period or its last change of plan or quantity (that time was prorated at other
    prices already), nor before a resume that billed the rest of the period (the time before it
    was never paid for)."""
    start, end = subscription.current_period_start, subscription.current_period_end
    if start is not None and end is not None:
        now = min(max(now, start), end)
    asked = data.proration_date
    if isinstance(asked, msgspec.UnsetType):
        return now
    if data.proration != "create_prorations":
        raise InvalidFieldError("proration_date", "only a change made with create_prorations is prorated")
    checked_time(asked, "proration_date")
    earliest = now if start is None else start
    if subscription.plan_changed_at is not None:
        earliest = max(earliest, subscription.plan_changed_at)
    if start is not None:
        resumed = await repository.rest_billed_from(subscription.id, start)
        earliest = earliest if resumed is None else max(earliest, resumed)
    if not earliest <= asked <= now:
        raise InvalidFieldError(
            "proration_date",
            f"must fall between {earliest.isoformat()} (the period's start, its last change of plan or "
            f"quantity, or the resume that billed the rest of it) and now ({now.isoformat()})",
        )
    return asked


def proration_lines(change: Change) -> tuple[LineDraft, ...]:
    """The credit for the unused time of what the period was billed at and the charge for the rest of
    it at the new plan and quantity, from when the change prorates."""
    period = change.period
    if period is None:
        return ()
    try:
        return change_preview(
            PlanPricing.of(change.billed[0]),
            PlanPricing.of(change.new),
            period,
            change.at,
            "create_prorations",
            current_quantity=change.billed[1],
            new_quantity=change.quantity,
        ).lines
    except PricingError as exc:
        raise InvalidFieldError("plan_id", str(exc)) from exc
