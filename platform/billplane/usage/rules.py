"""Which records of a batch may be stored: pure rules over a subscription's loaded state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from billplane.billing.locked import TURNING
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
    # Whether the period after the open one is billed here, metered: the subscription does not
    # end with the open period, and no change to a plan that is not metered waits for its end.
    renews_metered: bool = False


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
    refused = _outside_period(meter.now, meter.period_start, meter.period_end, timestamp)
    if refused is not None and _awaiting_the_run(meter, meter.period_end, timestamp):
        return None
    return refused


def _closed(meter: Meter) -> Refusal | None:
    """Why the subscription takes no usage at all."""
    if meter.status in ENDED_STATUSES:
        return Refusal("subscription_id", f"the subscription is {meter.status}: it takes no more usage")
    if meter.ended:
        return Refusal("subscription_id", "the subscription has ended: it takes no more usage")
    if meter.pricing_model != "metered":
        return Refusal("subscription_id", f"the subscription's plan is not metered ({meter.pricing_model})")
    return None


def _awaiting_the_run(meter: Meter, end: datetime, timestamp: datetime) -> bool:
    """Whether a record after the open period belongs to the next one, which only waits for the
    billing run to open it. The open period has ended by the subscription's clock (until then, a
    record past its end is a client clock running ahead, and an immediate cancellation would
    leave it unbilled), and the next period bills usage here: the run sums the ended period
    up to its end, so the record counts once, in the next. A provider billing the usage keeps
    its own periods: its records wait for the run."""
    return (
        meter.renews_metered
        and meter.status in TURNING  # the statuses the run moves on
        and meter.report_to is None
        and end <= meter.now
        and end <= timestamp <= meter.now + CLOCK_SKEW
    )


def _outside_period(now: datetime, start: datetime, end: datetime, timestamp: datetime) -> Refusal | None:
    if timestamp > now + CLOCK_SKEW:
        return Refusal("timestamp", f"in the future (now is {now.isoformat()})")
    if timestamp < start:
        return Refusal("timestamp", f"before the open period, which starts {start.isoformat()}")
    if timestamp >= end:
        return Refusal("timestamp", f"after the open period, which ends {end.isoformat()}")
    return None
