"""The sandbox's test payment methods: tokens whose outcome is known in advance.

A token stands where a real processor's stored payment method would (never a card number).
``charge`` answers with the immediate result; the two ``pending_*`` tokens settle later, and that
outcome arrives as a signed ``payment.succeeded`` or ``payment.failed`` webhook. Two more simulate
the network: ``unreachable`` never reaches the sandbox (every call fails as a connection error and
nothing is charged), ``answer_lost`` is charged and succeeds, but every answer is lost on the way
back (billplane sees a connection error); ``find_payment`` then tells the two apart. One more,
``refund_answer_lost``, charges like ``succeeds``, but every refund of its payments is made and its
answer lost; ``find_refund`` then finds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from billplane.plugins.contract import ChargeStatus

Network = Literal["ok", "unreachable", "answer_lost"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SandboxPaymentMethod:
    token: str
    code: str  # carried in the payment's id, so that a refund knows the outcome
    immediate: ChargeStatus
    final: Literal["succeeded", "failed"]
    failure_code: str | None = None
    failure_message: str | None = None
    description: str
    network: Network = "ok"
    refunds: Literal["ok", "answer_lost"] = "ok"  # the network as the payment's refunds meet it


SUCCEEDS = "pm_sandbox_succeeds"
DECLINED = "pm_sandbox_declined"
INSUFFICIENT_FUNDS = "pm_sandbox_insufficient_funds"
PENDING_SUCCEEDS = "pm_sandbox_pending_succeeds"
PENDING_FAILS = "pm_sandbox_pending_fails"
UNREACHABLE = "pm_sandbox_unreachable"
ANSWER_LOST = "pm_sandbox_answer_lost"
REFUND_ANSWER_LOST = "pm_sandbox_refund_answer_lost"

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
        SandboxPaymentMethod(
            token=UNREACHABLE,
            code="ur",
            immediate="failed",
            final="failed",
            description="never reaches the sandbox: a connection error, no charge",
            network="unreachable",
        ),
        SandboxPaymentMethod(
            token=ANSWER_LOST,
            code="al",
            immediate="succeeded",
            final="succeeded",
            description="charged and succeeds, but the answer is lost: a connection error",
            network="answer_lost",
        ),
        SandboxPaymentMethod(
            token=REFUND_ANSWER_LOST,
            code="rl",
            immediate="succeeded",
            final="succeeded",
            description="succeeds; each refund of the payment is made, but its answer is lost: a connection error",
            refunds="answer_lost",
        ),
    )
}
BY_CODE = {method.code: method for method in PAYMENT_METHODS.values()}

# A test token attached to a customer gets an id of its own, "<token>.<suffix>", as a real
# processor's payment method belongs to one customer: two customers can each hold every token.
ATTACHED_SEPARATOR = "."


def method_of(payment_method: str | None) -> SandboxPaymentMethod | None:
    """The test payment method a token, or an id ``attach_payment_method`` gave, stands for."""
    if payment_method is None:
        return None
    return PAYMENT_METHODS.get(payment_method.split(ATTACHED_SEPARATOR, 1)[0])
