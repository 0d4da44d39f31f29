"""Subscription answers computed from the subscription's id and the clock, never from stored state.

A subscription id carries its price's interval and, when it has one, its trial end. What the
sandbox answers is what a processor would answer to that call on a subscription in good standing:
it does not remember that one was canceled before (billplane owns that state anyway).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import cast

from billplane.plugins import ProviderError, ProviderSubscription
from billplane.plugins.contract import BillingInterval, SubscriptionStatus
from billplane_sandbox.ids import parse_id
from billplane_sandbox.periods import current_period

_INTERVAL = re.compile(r"^(day|week|month|year)([1-9][0-9]*)$")
_TRIAL = re.compile(r"^t([0-9]+)$")


def interval_param(interval: BillingInterval, count: int) -> str:
    return f"{interval}{count}"


def price_interval(account_id: int, provider_price_id: str) -> str:
    """The interval param a price id carries (``month1``), checking the id belongs to the account."""
    params = parse_id(account_id, "price", provider_price_id)
    if not params or not _INTERVAL.fullmatch(params[0]):
        raise ProviderError(f"no such price: {provider_price_id!r}", code="resource_missing")
    return params[0]


def subscription_params(interval: str, trial_end: datetime | None, now: datetime) -> list[str]:
    if trial_end is None or trial_end <= now:
        return [interval]
    return [interval, f"t{int(trial_end.timestamp())}"]


def state(
    account_id: int,
    provider_subscription_id: str,
    *,
    status: SubscriptionStatus | None = None,
    interval: str | None = None,
    cancel_at_period_end: bool = False,
    canceled: bool = False,
) -> ProviderSubscription:
    """The subscription as the sandbox reports it now; ``status`` overrides trialing/active."""
    params = parse_id(account_id, "sub", provider_subscription_id)
    matched = _INTERVAL.fullmatch(interval or (params[0] if params else ""))
    if matched is None:
        raise ProviderError(f"no such subscription: {provider_subscription_id!r}", code="resource_missing")
    now = datetime.now(UTC)
    start, end = current_period(now, cast("BillingInterval", matched[1]), int(matched[2]))
    trial = _TRIAL.fullmatch(params[1]) if len(params) > 1 else None
    trial_end = datetime.fromtimestamp(int(trial[1]), UTC) if trial else None
    in_trial = trial_end is not None and trial_end > now
    if in_trial:
        end = cast("datetime", trial_end)
    if canceled:
        status = "canceled"
    return ProviderSubscription(
        provider_id=provider_subscription_id,
        status=status or ("trialing" if in_trial else "active"),
        current_period_start=start,
        current_period_end=end,
        cancel_at_period_end=cancel_at_period_end,
        canceled_at=now if canceled else None,
    )
