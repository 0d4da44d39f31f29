"""Every outbox kind's operation, gathered from the modules that define them."""

from __future__ import annotations

from billplane.payments.operations import charge_payment, send_refund
from billplane.sync import catalog_operations, operations, subscription_operations
from billplane.sync.operations import Operation
from billplane.usage.reporting import report_usage

OPERATIONS: dict[str, Operation] = {
    **operations.OPERATIONS,
    **subscription_operations.OPERATIONS,
    **catalog_operations.OPERATIONS,
    "usage.report": report_usage,
    "payment.charge": charge_payment,
    "refund.create": send_refund,
}
