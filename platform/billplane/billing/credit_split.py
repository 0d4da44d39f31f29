"""Splitting a pending credit that an invoice takes in part (``pricing.credits.attachable``).

The pending item becomes the part the invoice takes, and a new pending item holds the rest, with
the same description, plan and period, each as quantity 1 at its own amount: the two add up to the
credit, so nothing is lost and nothing counted twice, whether or not the invoice is then written.
Sent on the session's driver, as the billing run's statements are (``billplane.billing.driver``),
and used by the run and by a subscription's own invoices alike.
"""

from __future__ import annotations

from typing import Any

_SPLIT = (
    "WITH part AS (UPDATE invoice_items SET amount = $2::bigint, quantity = 1, unit_amount = $2::numeric "
    "WHERE id = $1::bigint AND invoice_id IS NULL RETURNING customer_id, subscription_id, plan_id, description, "
    "currency, period_start, period_end, proration) "
    "INSERT INTO invoice_items (customer_id, subscription_id, plan_id, description, quantity, unit_amount, amount, "
    "currency, period_start, period_end, proration) SELECT customer_id, subscription_id, plan_id, description, 1, "
    "$3::numeric, $3::bigint, currency, period_start, period_end, proration FROM part RETURNING id::bigint"
)


async def split_credit(driver: Any, item_id: int, amount: int, applied: int) -> int:
    """Split pending credit ``item_id`` of ``amount`` into ``applied`` (taken now) and the rest,
    pending; returns the rest's id."""
    if not amount < applied < 0:
        raise ValueError(f"a part of credit {item_id} ({amount}) is between it and 0, not {applied}")
    rest: int | None = await driver.fetchval(_SPLIT, item_id, applied, amount - applied)
    if rest is None:  # the caller holds the item locked, pending: a bug if not
        raise LookupError(f"invoice item {item_id} is not pending")
    return rest
