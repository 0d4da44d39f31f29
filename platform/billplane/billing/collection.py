"""Collecting a billing run's invoices: which can be charged automatically, and through what.

As ``POST /v1/invoices/{id}/pay`` does (``charge_invoice``), for a whole batch of one tenant's new
invoices at once: through the subscription's provider account (else the tenant's default one) and
its payment method (else the customer's default at that account), which the lock read with the
subscriptions (``locked.Terms``). An invoice that cannot be charged now (no provider account, no
payment method) stays open for the tenant to pay or for dunning to retry; that is not an error of
the run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from billplane.billing.invoicing import OPEN, Finalized

logger = logging.getLogger("billplane.billing")


@dataclass(frozen=True, slots=True)
class Charge:
    """A pending payment of ``invoice``'s amount due, to queue."""

    invoice: Finalized
    account_id: int
    provider: str
    method_id: int


class _RefusedError(Exception):
    """An invoice that cannot be charged now; it stays open."""


def charges(invoices: list[Finalized], schema: str) -> list[Charge]:
    """The charges of ``invoices`` not paid at finalization, those that can be made, in order."""
    chosen = []
    for invoice in invoices:
        if invoice.status != OPEN:
            continue
        try:
            chosen.append(_charge(invoice))
        except _RefusedError as refused:
            logger.info("invoice %s of %s stays open: %s", invoice.id, schema, refused)
    return chosen


def _charge(invoice: Finalized) -> Charge:
    terms = invoice.terms
    if terms.account_id is None or terms.provider is None:
        if terms.wanted_account_id is None:
            raise _RefusedError("the tenant has no provider account to charge through: connect one first")
        raise _RefusedError(
            f"provider account {terms.wanted_account_id} no longer exists: connect an account to charge through"
        )
    account = terms.account_id
    if terms.wanted_method_id is None:
        if terms.method_id is None:
            raise _RefusedError(f"the customer has no default payment method at provider account {account}: name one")
    elif terms.method_id is None:
        raise _RefusedError(
            f"payment method {terms.wanted_method_id} (the subscription's) is not an attached payment method "
            "of the customer"
        )
    elif terms.method_account_id != account:
        raise _RefusedError(
            f"payment method {terms.wanted_method_id} (the subscription's) is at provider account "
            f"{terms.method_account_id}; this invoice is charged through account {account}"
        )
    assert terms.method_id is not None  # noqa: S101 - refused above otherwise
    return Charge(invoice, account, terms.provider, terms.method_id)
