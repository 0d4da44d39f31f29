"""The sandbox's test payment methods: tokens whose outcome is known in advance.

A token stands where a real processor's stored payment method would (never a card number).
``charge`` answers with the immediate result; the two ``pending_*`` tokens settle later, and that
outcome arrives as a signed ``payment.succeeded`` or ``payment.failed`` webhook.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from billplane.plugins.contract import ChargeStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class SandboxPaymentMethod:
    token: str
    code: str  # carried in the payment's id, so that a refund knows the outcome
    immediate: ChargeStatus
    final: Literal["succeeded", "failed"]
    failure_code: str | None = None
    failure_message: str | None = None
    description: str


SUCCEEDS = "pm_sandbox_succeeds"
DECLINED = "pm_sandbox_declined"
INSUFFICIENT_FUNDS = "pm_sandbox_insufficient_funds"
PENDING_SUCCEEDS = "pm_sandbox_pending_succeeds"
PENDING_FAILS = "pm_sandbox_pending_fails"

PAYMENT_METHODS: dict[str, SandboxPaymentMethod] = {
    method.token: method
    for method in (
        SandboxPaymentMethod(
            token=SUCCEEDS, code="ok", immediate="succeeded", final="succeeded", description="always succeeds"
        ),
        SandboxPaymentMethod(
            token=DECLINED,
            code="dc",
            immediate="failed",
            final="failed",
            failure_code="card_declined",
            failure_message="The card was declined.",
            description="always declines",
        ),
        SandboxPaymentMethod(
            token=INSUFFICIENT_FUNDS,
            code="nf",
            immediate="failed",
            final="failed",
            failure_code="insufficient_funds",
            failure_message="The card has insufficient funds.",
            description="declines for insufficient funds",
        ),
        SandboxPaymentMethod(
            token=PENDING_SUCCEEDS,
            code="ps",
            immediate="pending",
            final="succeeded",
            description="pending, then succeeds (payment.succeeded webhook)",
        ),
        SandboxPaymentMethod(
            token=PENDING_FAILS,
            code="pf",
            immediate="pending",
            final="failed",
            failure_code="debit_failed",
            failure_message="The payment failed after it was submitted.",
            description="pending, then fails (payment.failed webhook)",
        ),
    )
}
BY_CODE = {method.code: method for method in PAYMENT_METHODS.values()}
