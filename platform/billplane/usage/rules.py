"""Which records of a batch may be stored: pure rules over a subscription's loaded state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from billplane.billing.locked import TURNING
from billplane.subscriptions.models import ENDED_STATUSES

# Clients' clocks run a little ahead of ours: a record stamped up to this far in the future is
# taken as "now", anything later is refused (it would be counted in a period not yet open).
CLOCK_SKEW = timedelta(minutes=5)

# An incomplete subscription waits for its customer (a first payment, an approval) and may never
# start (``incomplete_expired``): a record of it would wait for an invoice that may never come.
_INCOMPLETE = "it takes usage once the customer has completed it (a first payment, an approval)"
# An unpaid one keeps its open period, whose usage is billed when the open invoice is paid (the
# period then ends, ``billing.dunning``) or by ``invoice_now``; the next period starts only then.
_UNPAID = "the subscription is unpaid: its next period starts once its open invoice is paid"


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
    # When a change made the plan metered (``Subscription.metered_since``); None: never.
    metered_since: datetime | None = None


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
    if refused is None:
        return _before_metered(meter, timestamp)
    return _outside(meter, meter.period_end, timestamp, refused)


def _outside(meter: Meter, end: datetime, timestamp: datetime, refused: Refusal) -> Refusal | None:
    """Why a record outside the open period is refused (``refused``), if it is: one of the next
    period is taken while that period waits for the run (``_awaiting_the_run``), and the refusal
    of an unpaid subscription's says why no next period opens."""
    if _awaiting_the_run(meter, end, timestamp):
        return None
    if meter.status == "unpaid" and meter.report_to is None and end <= timestamp <= meter.now + CLOCK_SKEW:
        return Refusal(refused.field, f"{refused.reason}; {_UNPAID}")
    return refused


def _before_metered(meter: Meter, timestamp: datetime) -> Refusal | None:
    """Why a record in the open period is refused: stamped before a change made the plan metered
    in it (a ``metered_since`` of an earlier period is before its start). That time was the plan
    before's, paid in advance, and no invoice bills usage stamped there."""
    since = meter.metered_since
    if since is None or timestamp >= since:
        return None
    return Refusal(
        "timestamp",
        f"before the subscription's plan became metered ({since.isoformat()}): the plan before billed that time",
    )


def _closed(meter: Meter) -> Refusal | None:
    """Why the subscription takes no usage at all."""
    if meter.status in ENDED_STATUSES:
        return Refusal("subscription_id", f"the subscription is {meter.status}: it takes no more usage")
    if meter.ended:
        return Refusal("subscription_id", "the subscription has ended: it takes no more usage")
    if meter.pricing_model != "metered":
        return Refusal("subscription_id", f"the subscription's plan is not metered ({meter.pricing_model})")
    if meter.status == "incomplete" and meter.report_to is None:
        # A provider that bills the usage bills it by its own rules for the state: reported there.
        return Refusal("subscription_id", f"the subscription is incomplete: {_INCOMPLETE}")
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
