"""What a change of plan must respect for the proration asked: refused with a 422 naming
``proration``, and nothing written (``SubscriptionService.update``, and its preview alike)."""

from __future__ import annotations

from datetime import datetime

from billplane.api.problems import InvalidFieldError
from billplane.catalog.models import Plan
from billplane.pricing import Period
from billplane.subscriptions.periods import period_end, same_length


def check_usage_kept(current: Plan, new: Plan, proration: str) -> None:
    """Usage recorded under a metered plan is billed when the period ends, at the plan the
    subscription has then: a change to a plan that does not meter, made now, would drop it."""
    if proration != "at_period_end" and current.pricing_model == "metered" and new.pricing_model != "metered":
        raise InvalidFieldError(
            "proration",
            f"plan {current.id} is metered: this period's usage is billed when it ends, so a change to plan {new.id}, "
            "which is not, is made at_period_end",
        )


def check_same_period(current: Plan, new: Plan, proration: str) -> None:
    """A change prorated now prices the rest of the current period at the new plan: only sound when
    the new plan bills the same period (a month's share of a yearly price is no price at all).
    Periods the same length by definition are the same period, whatever their unit: a year and 12
    months, a week and 7 days (``periods.same_length``)."""
    if proration == "create_prorations" and same_length(current.billing_interval, current.interval_count) != (
        same_length(new.billing_interval, new.interval_count)
    ):
        raise InvalidFieldError(
            "proration",
            f"plan {new.id} bills every {new.interval_count} {new.billing_interval}(s) and the current plan every "
            f"{current.interval_count} {current.billing_interval}(s): a change between billing periods cannot be "
            "prorated into the current one; use at_period_end (or none)",
        )


def check_period_prorated(plan: Plan, period: Period, anchor: datetime | None, proration: str) -> None:
    """A proration credits and charges shares of ``plan``'s price for one of its billing periods:
    refused when the current period is not one (a change made with ``none`` to a plan of another
    interval keeps the old period until it ends), as the share of a yearly price over a month is
    no price at all. Checked for the plan credited and the plan charged, quantity changes included."""
    start, end = period.start, period.end
    one = period_end(start, plan.billing_interval, plan.interval_count, anchor)
    if proration == "create_prorations" and one != end:
        raise InvalidFieldError(
            "proration",
            f"the current period ({start.isoformat()} to {end.isoformat()}) is not one billing period of plan "
            f"{plan.id} (every {plan.interval_count} {plan.billing_interval}(s)): a change in it cannot be prorated; "
            "use none or at_period_end",
        )
