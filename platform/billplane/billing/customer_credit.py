"""Credits that outlive their subscription: they become the customer's, and wait for the
customer's next invoice in their currency.

A credit (a negative pending invoice item: unused time after a downgrade) waits for its
subscription's next invoice, which takes as much of it as brings the invoice to zero
(``pricing.credits``). When the subscription ends first (a cancellation, at once or at the
period end, dunning's final action, or its provider ending it), no next invoice comes: the credit
is released to the customer (``subscription_id`` NULL, like the one-off items a tenant adds for a
customer: ``items_service``), and the next invoice any subscription of that customer issues in
that currency takes it, the billing run's, the first invoice at creation or ``invoice_now``'s.
Pending *charges* are not released: a canceled subscription bills them only on its last invoice
(docs/concepts/subscriptions.md, "Canceling now"). billplane never pays a credit out.

Sent on the session's driver, as the billing run's statements are (``billplane.billing.driver``).
"""

from __future__ import annotations

from typing import Any

_RELEASE = (
    "UPDATE invoice_items SET subscription_id = NULL "
    "WHERE subscription_id = ANY($1::bigint[]) AND invoice_id IS NULL AND amount < 0"
)


async def release_credits(driver: Any, subscription_ids: list[int]) -> None:
    """The pending credits of the ended ``subscription_ids`` become their customers'. Only for
    subscriptions billplane bills: a credit on one its provider bills (a proration written before
    such subscriptions stopped getting them here) was the provider's to give; callers leave those
    out (the billing run and dunning never see them)."""
    if subscription_ids:
        await driver.execute(_RELEASE, sorted(subscription_ids))
