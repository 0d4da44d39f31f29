"""What an ``invoice.payment_failed`` event says besides the invoice: why the attempt failed.

A declined payment has its own ``payment.failed`` event, but a charge that could not even be made
(no usable payment method, no provider account) has no payment at all: the reason would be lost.
So every ``invoice.payment_failed`` carries ``payment_failure``, whichever way the attempt failed.
"""

from __future__ import annotations

import msgspec

from billplane.invoices.models import Invoice as InvoiceRow
from billplane.invoices.schemas import Invoice as InvoiceView

# The code of an attempt refused before any charge was made.
NOT_ATTEMPTED = "charge_not_attempted"


class PaymentFailure(msgspec.Struct, kw_only=True):
    # The provider's decline code (failure_code of the payment), or charge_not_attempted.
    code: str | None
    message: str | None
    # The failed payment; None when no charge was made.
    payment_id: int | None


class InvoicePaymentFailed(InvoiceView, kw_only=True):
    """The invoice as the API shows it, and why its payment attempt failed."""

    payment_failure: PaymentFailure


def payment_failed(invoice: InvoiceRow, failure: PaymentFailure) -> InvoicePaymentFailed:
    view = InvoiceView.of(invoice)
    return InvoicePaymentFailed(**msgspec.structs.asdict(view), payment_failure=failure)
