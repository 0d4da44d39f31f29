"""Credit that outlives its subscription: what of it the subscription's own charges do not absorb
becomes the customer's, and waits for the customer's next invoice in its currency.

A credit (a negative pending invoice item: unused time after a downgrade) waits for its
subscription's next invoice, which takes the charges, then as much credit as brings the invoice to
zero (``pricing.credits``). When the subscription ends first (a cancellation, at once or at the
period end, dunning's final action, or its provider ending it), no next invoice comes, and its
pending *charges* are never billed (only ``invoice_now``'s last invoice bills them:
docs/concepts/subscriptions.md, "Canceling now"). So its pending items are first settled among
themselves, per currency, as that next invoice would have at a base of 0: the charges, offset by
the credits in their order, one split (``credit_split``) if it is taken in part. Those stay
pending on the ended subscription, never billed and never released; releasing them too would
credit the customer for money never paid (an upgrade then a downgrade, then a cancellation).
Only the credit left over is released to the customer (``subscription_id`` NULL, like the one-off
items a tenant adds for a customer: ``items_service``), and the next invoice any subscription of
that customer issues in that currency takes it: the billing run's, the first invoice at creation
or ``invoice_now``'s. billplane never pays a credit out.

Sent on the session's driver, as the billing run's statements are (``billplane.billing.driver``):
one statement when the subscriptions have no pending items, two when nothing is split, one more
per split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from billplane.billing.credit_split import split_credit
from billplane.pricing.credits import attachable

# Locked in id order (the order the subscriptions' next invoices would have taken them in).
_PENDING = (
    "SELECT id::bigint, subscription_id::bigint, currency::text, amount::bigint FROM invoice_items "
    "WHERE subscription_id = ANY($1::bigint[]) AND invoice_id IS NULL ORDER BY id FOR UPDATE"
)
_RELEASE = "UPDATE invoice_items SET subscription_id = NULL WHERE id = ANY($1::bigint[]) AND invoice_id IS NULL"


@dataclass(frozen=True, slots=True)
class _Pending:
    id: int
    subscription_id: int
    currency: str
    amount: int


async def release_credits(driver: Any, subscription_ids: list[int]) -> None:
    """The credit the pending charges of the ended ``subscription_ids`` do not absorb becomes their
    customers'. Only for subscriptions billplane bills: a credit on one its provider bills (a
    proration written before such subscriptions stopped getting them here) was the provider's to
    give; callers leave those out (the billing run and dunning never see them)."""
    if not subscription_ids:
        return
    settled: dict[tuple[int, str], list[_Pending]] = {}
    for row in await driver.fetch(_PENDING, sorted(set(subscription_ids))):
        item = _Pending(*row)
        settled.setdefault((item.subscription_id, item.currency), []).append(item)
    released: list[int] = []
    for items in settled.values():  # each in id order
        # As the subscription's next invoice at 0 would: every charge, and the credits that offset them.
        attached = attachable(items, base=0)
        offset = {item.id for item in attached.whole}
        if attached.part is not None:
            part = attached.part
            offset.add(part.id)  # keeps the part that brings the charges to 0; the rest is released
            released.append(await split_credit(driver, part.id, part.amount, attached.applied))
        released += [item.id for item in items if item.id not in offset]  # credits only
    if released:
        await driver.execute(_RELEASE, sorted(released))
