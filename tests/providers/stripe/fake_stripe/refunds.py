"""Refunds in the fake Stripe: made, read, and settled later by the test, as Stripe settles them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import invalid, missing
from .lists import Params, created_matches, page
from .objects import fixture, new_id, now

if TYPE_CHECKING:
    from .resources import Store

# Stripe's test cards for refunds (https://docs.stripe.com/testing#refunds); their charges succeed.
# A refund of this card stays `pending` until the test settles it (`settle_refund`).
PENDING_REFUND = "pm_card_pendingRefund"
# A refund of this card reads `succeeded`, then fails (expired_or_canceled_card) when the test says so.
REFUND_FAILS = "pm_card_refundFail"

# Where Stripe may take a refund from each status. A card refund can still fail after it succeeded;
# only a refund waiting for the customer (`requires_action`) can be canceled.
_SETTLES: dict[str, set[str]] = {
    "pending": {"succeeded", "failed"},
    "succeeded": {"failed"},
    "requires_action": {"pending", "succeeded", "failed", "canceled"},
}
# A failed or canceled refund gives its amount back to what can be refunded.
_HOLDING = {"pending", "succeeded", "requires_action"}


def _refunded_intent(store: Store, params: Params) -> dict[str, Any]:
    """The succeeded PaymentIntent a refund names: by ``charge`` (its latest charge) or by ``payment_intent``."""
    charge = params.get("charge")
    if charge is not None:
        found = next((i for i in store.payment_intents.values() if i.get("latest_charge") == charge), None)
        if found is None or found["status"] != "succeeded":
            raise missing("charge", str(charge), "charge")
        return found
    intent_id = params.get("payment_intent")
    intent = store.payment_intents.get(str(intent_id))
    if intent is None or intent["status"] != "succeeded":
        raise missing("payment_intent", str(intent_id), "payment_intent")
    return intent


def refunded_amount(store: Store, intent_id: str) -> int:
    """How much of a PaymentIntent's amount its refunds hold (failed and canceled ones hold none)."""
    return sum(
        r["amount"] for r in store.refunds.values() if r["payment_intent"] == intent_id and r["status"] in _HOLDING
    )


def create_refund(store: Store, _path: dict[str, str], params: Params) -> dict[str, Any]:
    intent = _refunded_intent(store, params)
    remaining = intent["amount"] - refunded_amount(store, intent["id"])
    amount = int(params.get("amount", remaining))
    if remaining <= 0:
        raise invalid(f"Charge {intent['latest_charge']} has already been refunded.", code="charge_already_refunded")
    if amount > remaining:
        raise invalid(
            f"Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining})",
            code="amount_too_large",
            param="amount",
        )
    refund = fixture(
        "refund",
        id=new_id("re"),
        amount=amount,
        currency=intent["currency"],
        charge=intent["latest_charge"],
        payment_intent=intent["id"],
        reason=params.get("reason"),
        metadata=params.get("metadata") or {},
        status="pending" if intent["payment_method"] == PENDING_REFUND else "succeeded",
        created=now(),
    )
    store.refunds[refund["id"]] = refund
    return refund


def list_refunds(store: Store, _path: dict[str, str], params: Params) -> dict[str, Any]:
    """Newest first, as Stripe lists; ``charge``, ``payment_intent`` and ``created`` filter,
    ``limit`` and the cursors page."""
    found = [
        refund
        for refund in reversed(store.refunds.values())
        if params.get("charge") in {None, refund["charge"]}
        and params.get("payment_intent") in {None, refund["payment_intent"]}
        and created_matches(params, refund["created"])
    ]
    return page(found, params, "/v1/refunds")


def retrieve_refund(store: Store, path: dict[str, str], _params: Params) -> dict[str, Any]:
    refund = store.refunds.get(path["refund"])
    if refund is None:
        raise missing("refund", path["refund"])
    return refund


def settle_refund(
    store: Store, refund_id: str, status: str, *, failure_reason: str = "expired_or_canceled_card"
) -> None:
    """What Stripe does when a refund's outcome arrives (no webhook is sent by the fake)."""
    refund = store.refunds[refund_id]
    if status not in _SETTLES.get(refund["status"], set()):
        raise ValueError(f"Stripe does not take refund {refund_id} from {refund['status']} to {status}")
    refund["status"] = status
    if status == "failed":
        refund.update(failure_reason=failure_reason, failure_balance_transaction=new_id("txn"))
