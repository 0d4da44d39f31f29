"""Which records of a batch may be stored: pure rules over a subscription's loaded state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from billplane.subscriptions.models import ENDED_STATUSES

# Clients' clocks run a little ahead of ours: a record stamped up to this far in the future is
# taken as "now", anything later is refused (it would be counted in a period not yet open).
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True, slots=True, kw_only=True)
class Meter:
    """One subscription as ingestion needs it."""

    id: int
    status: str
    pricing_model: str
    period_start: datetime | None
    period_end: datetime | None
    ended: bool
    # "Now" for this subscription: its customer's test clock, else the real time.
    now: datetime
    # The provider account usage is reported to (its plugin declares `usage`), else None.
    report_to: int | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    field: str
    reason: str


def refusal(meter: Meter | None, timestamp: datetime) -> Refusal | None:
    """Why a record for ``meter`` at ``timestamp`` cannot be stored, or None if it can.

    ``None`` for ``meter``: no such subscription in this tenant (another tenant's id looks the same).
    """
    if meter is None:
        return Refusal("subscription_id", "no such subscription")
    closed = _closed(meter)
    if closed is not None:
        return closed
    if meter.period_start is None or meter.period_end is None:
        return Refusal("subscription_id", "the subscription has no open period")
    return _outside_period(meter.now, meter.period_start, meter.period_end, timestamp)


def _closed(meter: Meter) -> Refusal | None:
    """Why the subscription takes no usage at all."""
    if meter.status in ENDED_STATUSES:
        return Refusal("subscription_id", f"the subscription is {meter.status}: it takes no more usage")
    if meter.ended:
        return Refusal("subscription_id", "the subscription has ended: it takes no more usage")
    if meter.pricing_model != "metered":
        return Refusal("subscription_id", f"the subscription's plan is not metered ({meter.pricing_model})")
    return None


def _outside_period(now: datetime, start: datetime, end: datetime, timestamp: datetime) -> Refusal | None:
    if timestamp > now + CLOCK_SKEW:
        return Refusal("timestamp", f"in the future (now is {now.isoformat()})")
    if timestamp < start:
        return Refusal("timestamp", f"before the open period, which starts {start.isoformat()}")
    if timestamp >= end:
        return Refusal("timestamp", f"after the open period, which ends {end.isoformat()}")
    return None
