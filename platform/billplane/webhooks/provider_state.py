"""Copying a provider's view of a subscription or invoice onto the local row.

Used both for the answer to billplane's own call (a subscription just created, which may wait for
the customer's approval) and for webhook events. Only what the provider reported is written: a
field it left out keeps its local value.
"""

from __future__ import annotations

from datetime import datetime

from billplane.invoices.models import Invoice
from billplane.plugins.contract import ProviderInvoice, ProviderSubscription
from billplane.subscriptions.models import Subscription


def record_subscription(
    row: Subscription, state: ProviderSubscription, *, provider_bills: bool, status: bool = True
) -> None:
    """``provider_bills``: whether the provider invoices the subscription (Stripe, PayPal). Only
    then are its period, trial end and quantity taken: for a provider that does not, billplane
    bills the subscription by its own, and a provider's period that moved forward would leave the
    time between the two period ends unbilled (one that moved back would bill some twice).
    ``status``: whether its status is taken too (not, for such a provider, a dunning status)."""
    row.cancel_at_period_end = state.cancel_at_period_end
    if provider_bills:
        _take_billing_times(row, state)
    if status:
        row.status = state.status
        row.canceled_at = state.canceled_at
        # A next action only means something while the customer has not acted yet.
        action = state.next_action if state.status == "incomplete" else None
        row.next_action_type = None if action is None else action.type
        row.next_action_url = None if action is None else action.url


def _take_billing_times(row: Subscription, state: ProviderSubscription) -> None:
    # A period that starts before the local one is older news, never taken: the provider's
    # periods move forward.
    earlier = (
        state.current_period_start is not None
        and row.current_period_start is not None
        and state.current_period_start < row.current_period_start
    )
    if state.current_period_start is not None and not earlier:
        row.current_period_start = state.current_period_start
    if state.current_period_end is not None and not earlier:
        row.current_period_end = state.current_period_end
    if state.trial_end is not None:
        row.trial_end = state.trial_end
    if state.quantity is not None and state.quantity >= 1:  # Stripe allows 0 seats; billplane's start at 1
        row.quantity = state.quantity


# What a subscription can still be when the provider's answer to its creation arrives, if
# nothing happened to it here in between.
_CREATION_STATES = frozenset({"incomplete", "trialing", "active"})


def record_created(row: Subscription, created: ProviderSubscription, *, provider_bills: bool) -> None:
    """The provider's answer to the create call, unless it is older news than the local row.

    The call can finish long after the subscription was created (a retry, a slow provider, a
    customer still being created): by then a webhook may have said more, or billplane's own billing
    may have moved the subscription on (a billing run to its next period, dunning to past_due or
    unpaid, a pause or a cancellation). The answer must not undo that: an older period would be
    billed again, a past_due subscription would look paid up.
    """
    if row.provider_event_at is not None or row.status not in _CREATION_STATES:
        return
    answered_start = created.current_period_start
    if (
        answered_start is not None
        and row.current_period_start is not None
        and answered_start < row.current_period_start
    ):
        return
    record_subscription(row, created, provider_bills=provider_bills)


# How far along its life an invoice is. A provider's invoice only moves forward (Stripe: draft,
# open, then paid, void or uncollectible, and an uncollectible one can still be paid or voided).
_INVOICE_STAGE = {"draft": 0, "open": 1, "uncollectible": 2, "paid": 3, "void": 3}


def invoice_goes_back(current: str, reported: str) -> bool:
    """Whether ``reported`` would move an invoice that is ``current`` back: older news that a
    watermark of whole seconds could not tell apart (two events of one second, in either order)."""
    if current == reported:
        return False
    return _INVOICE_STAGE.get(reported, 0) <= _INVOICE_STAGE.get(current, 0)


def record_invoice(row: Invoice, state: ProviderInvoice, at: datetime) -> None:
    """``number`` stays billplane's own (gapless, per tenant); the provider's number is not copied."""
    row.status = state.status
    row.currency = state.currency
    row.total = max(state.total, 0)
    row.subtotal = row.total
    # The database refuses amount_paid above the total: a malformed event must not stop the queue.
    row.amount_paid = min(max(state.amount_paid, 0), row.total)
    if state.status != "draft" and row.finalized_at is None:
        row.finalized_at = at
    if state.status == "paid" and row.paid_at is None:
        row.paid_at = at
    if state.status == "void" and row.voided_at is None:
        row.voided_at = at
    if state.period_start is not None:
        row.period_start = state.period_start
    if state.period_end is not None:
        row.period_end = state.period_end
