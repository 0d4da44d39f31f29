"""Stripe webhooks: verified with the account's secret(s), each applied event type mapped."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from billplane_stripe.adapter import StripeAdapter
from billplane_stripe.webhooks import MAPPED

from billplane.plugins import ProviderEvent, ProviderPaymentMethod, WebhookVerificationError
from tests.providers.stripe.conftest import PREVIOUS_WEBHOOK_SECRET, WEBHOOK_SECRET, MakeAdapter
from tests.providers.stripe.fake_stripe import events, objects

pytestmark = pytest.mark.anyio


def now() -> datetime:
    # Per call, never at import: a long suite run must not age the signatures past the tolerance.
    return datetime.now(UTC).replace(microsecond=0)


def _headers(headers: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _signed(
    type_: str, obj: dict[str, Any], *, secrets: list[str] | None = None, at: datetime | None = None
) -> tuple[dict[str, str], bytes, dict[str, Any]]:
    at = at or now()
    payload = events.event(type_, obj, created=int(at.timestamp()))
    headers, body = events.sign(payload, secrets or [WEBHOOK_SECRET], at)
    return _headers(headers), body, payload


async def _parse(adapter: StripeAdapter, type_: str, obj: dict[str, Any]) -> list[ProviderEvent]:
    headers, body, _ = _signed(type_, obj)
    return await adapter.parse_webhook(headers, body)


def _intent(**fields: Any) -> dict[str, Any]:
    return objects.fixture("payment_intent", id="pi_1", amount=4200, currency="eur", customer="cus_1", **fields)


# -- verification ----------------------------------------------------------------------------


async def test_a_valid_webhook_is_one_event(stripe_adapter: StripeAdapter) -> None:
    at = now()
    headers, body, payload = _signed("payment_intent.succeeded", _intent(status="succeeded"), at=at)
    (event,) = await stripe_adapter.parse_webhook(headers, body)
    assert event.event_id == payload["id"]
    assert event.occurred_at == at
    assert event.occurred_at.tzinfo is not None
    assert (event.provider_object_id, event.provider_type) == ("pi_1", "payment_intent.succeeded")


async def test_tampered_body_is_rejected(stripe_adapter: StripeAdapter) -> None:
    headers, body, _ = _signed("payment_intent.succeeded", _intent(status="succeeded"))
    tampered = body.replace(b'"amount": 4200', b'"amount": 1')
    assert tampered != body
    with pytest.raises(WebhookVerificationError):
        await stripe_adapter.parse_webhook(headers, tampered)


async def test_wrong_secret_is_rejected(stripe_adapter: StripeAdapter) -> None:
    headers, body, _ = _signed("payment_intent.succeeded", _intent(), secrets=["whsec_someone_else"])
    with pytest.raises(WebhookVerificationError) as caught:
        await stripe_adapter.parse_webhook(headers, body)
    assert WEBHOOK_SECRET not in str(caught.value)


@pytest.mark.parametrize(("age", "verdict"), [(timedelta(minutes=4), "accepted"), (timedelta(minutes=6), "too old")])
async def test_timestamp_tolerance(stripe_adapter: StripeAdapter, age: timedelta, verdict: str) -> None:
    headers, body, _ = _signed("payment_intent.succeeded", _intent(), at=datetime.now(UTC) - age)
    if verdict == "accepted":
        assert await stripe_adapter.parse_webhook(headers, body)
    else:
        with pytest.raises(WebhookVerificationError, match="tolerance"):
            await stripe_adapter.parse_webhook(headers, body)


async def test_the_previous_secret_is_accepted_during_rotation(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter(previous_webhook_secret=PREVIOUS_WEBHOOK_SECRET)
    headers, body, _ = _signed("payment_intent.succeeded", _intent(), secrets=[PREVIOUS_WEBHOOK_SECRET])
    assert await adapter.parse_webhook(headers, body)
    without = make_adapter()
    with pytest.raises(WebhookVerificationError):
        await without.parse_webhook(headers, body)


@pytest.mark.parametrize(
    "order", [[WEBHOOK_SECRET, "whsec_other"], ["whsec_other", WEBHOOK_SECRET]], ids=["ours-first", "ours-second"]
)
async def test_a_header_with_two_signatures(stripe_adapter: StripeAdapter, order: list[str]) -> None:
    headers, body, _ = _signed("payment_intent.succeeded", _intent(), secrets=order)
    assert headers["stripe-signature"].count("v1=") == 2
    assert await stripe_adapter.parse_webhook(headers, body)


async def test_missing_signature_or_secret(stripe_adapter: StripeAdapter, make_adapter: MakeAdapter) -> None:
    headers, body, _ = _signed("payment_intent.succeeded", _intent())
    with pytest.raises(WebhookVerificationError, match="missing"):
        await stripe_adapter.parse_webhook({}, body)
    with pytest.raises(WebhookVerificationError, match="no webhook signing secret"):
        await make_adapter(webhook_secret=None).parse_webhook(headers, body)


async def test_a_signed_body_that_is_no_event_is_rejected(stripe_adapter: StripeAdapter) -> None:
    for body in (b"not json", b"[1, 2]", json.dumps({"id": "evt_1", "type": "x"}).encode()):
        stamp = int(now().timestamp())
        signature = events.signature(body, WEBHOOK_SECRET, stamp)
        headers = {"stripe-signature": f"t={stamp},v1={signature}"}
        with pytest.raises(WebhookVerificationError):
            await stripe_adapter.parse_webhook(headers, body)


# -- mapping ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stripe_type", "billplane_type"),
    [
        ("customer.created", "customer.created"),
        ("customer.updated", "customer.updated"),
        ("customer.deleted", "customer.deleted"),
    ],
)
async def test_customer_events(stripe_adapter: StripeAdapter, stripe_type: str, billplane_type: str) -> None:
    (event,) = await _parse(stripe_adapter, stripe_type, objects.fixture("customer", id="cus_9"))
    assert (event.type, event.provider_object_id) == (billplane_type, "cus_9")


def _subscription(**fields: Any) -> dict[str, Any]:
    sub = objects.fixture(
        "subscription", id="sub_9", status="active", pause_collection=None, cancel_at_period_end=False
    )
    sub["items"]["data"][0].update(quantity=3, current_period_start=1_800_000_000, current_period_end=1_802_592_000)
    sub.update(fields)
    return sub


@pytest.mark.parametrize(
    ("stripe_type", "billplane_type", "fields", "status"),
    [
        ("customer.subscription.created", "subscription.updated", {"status": "trialing"}, "trialing"),
        ("customer.subscription.updated", "subscription.updated", {"status": "past_due"}, "past_due"),
        ("customer.subscription.paused", "subscription.updated", {"status": "paused"}, "paused"),
        ("customer.subscription.resumed", "subscription.updated", {}, "active"),
        ("customer.subscription.deleted", "subscription.canceled", {"status": "canceled"}, "canceled"),
        ("customer.subscription.updated", "subscription.updated", {"pause_collection": {"behavior": "void"}}, "paused"),
    ],
)
async def test_subscription_events(
    stripe_adapter: StripeAdapter, stripe_type: str, billplane_type: str, fields: dict[str, Any], status: str
) -> None:
    (event,) = await _parse(stripe_adapter, stripe_type, _subscription(**fields))
    assert (event.type, event.provider_object_id) == (billplane_type, "sub_9")
    assert event.subscription is not None
    assert event.subscription.status == status
    assert event.subscription.quantity == 3
    assert event.subscription.current_period_end == datetime.fromtimestamp(1_802_592_000, UTC)


_INVOICE_STATUS = {"invoice.paid": "paid", "invoice.voided": "void", "invoice.marked_uncollectible": "uncollectible"}


@pytest.mark.parametrize("stripe_type", ["invoice.finalized", *_INVOICE_STATUS, "invoice.payment_failed"])
async def test_invoice_events(stripe_adapter: StripeAdapter, stripe_type: str) -> None:
    invoice = objects.fixture(
        "invoice",
        id="in_9",
        status=_INVOICE_STATUS.get(stripe_type, "open"),
        total=4200,
        amount_due=4200,
        amount_paid=4200 if stripe_type == "invoice.paid" else 0,
        number="BP-0009",
        subscription=None,
        parent={"type": "subscription_details", "subscription_details": {"subscription": "sub_9", "metadata": {}}},
        payments={"object": "list", "data": [{"payment": {"type": "payment_intent", "payment_intent": "pi_9"}}]},
    )
    (event,) = await _parse(stripe_adapter, stripe_type, invoice)
    assert (event.type, event.provider_object_id) == (stripe_type, "in_9")
    assert event.invoice is not None
    assert (event.invoice.total, event.invoice.currency, event.invoice.number) == (4200, "USD", "BP-0009")
    assert event.invoice.provider_subscription_id == "sub_9"
    assert event.invoice.provider_payment_id == "pi_9"
    assert event.invoice.provider_customer_id == invoice["customer"]
    assert event.invoice.status == _INVOICE_STATUS.get(stripe_type, "open")


async def test_an_older_invoice_shape_names_its_subscription_and_payment(stripe_adapter: StripeAdapter) -> None:
    invoice = objects.fixture("invoice", id="in_8", status="paid", subscription="sub_8", payment_intent="pi_8")
    (event,) = await _parse(stripe_adapter, "invoice.paid", invoice)
    assert event.invoice is not None
    assert (event.invoice.provider_subscription_id, event.invoice.provider_payment_id) == ("sub_8", "pi_8")


async def test_an_invoice_paid_partly_from_the_customers_balance_owes_nothing(stripe_adapter: StripeAdapter) -> None:
    """Stripe's amount_paid leaves out the customer's balance applied: 300 of 1000 came from it.
    billplane shows total - amount_paid as due, so it showed 300 still owed on a paid invoice."""
    paid = {"total": 1000, "amount_due": 700, "amount_paid": 700, "amount_remaining": 0}
    invoice = objects.fixture("invoice", id="in_7", status="paid", currency="usd", **paid)
    (event,) = await _parse(stripe_adapter, "invoice.paid", invoice)
    assert event.invoice is not None
    assert (event.invoice.total, event.invoice.amount_paid, event.invoice.amount_due) == (1000, 1000, 700)

    voided = objects.fixture("invoice", id="in_6", status="void", currency="usd", total=1000, amount_paid=0)
    (event,) = await _parse(stripe_adapter, "invoice.voided", voided | {"amount_remaining": 0})
    assert event.invoice is not None
    assert event.invoice.amount_paid == 0  # what a void invoice no longer asks for was not paid


async def test_an_invoice_whose_amounts_cannot_be_read_carries_no_invoice(stripe_adapter: StripeAdapter) -> None:
    """An ISK amount no whole krona holds (from before Stripe refused them) is not read as 0."""
    invoice = objects.fixture("invoice", id="in_5", status="open", currency="isk", total=150050, amount_paid=0)
    (event,) = await _parse(stripe_adapter, "invoice.finalized", invoice)
    assert (event.type, event.invoice) == ("invoice.finalized", None)


async def test_payment_succeeded(stripe_adapter: StripeAdapter) -> None:
    (event,) = await _parse(stripe_adapter, "payment_intent.succeeded", _intent(status="succeeded", invoice="in_9"))
    assert event.type == "payment.succeeded"
    assert event.payment is not None
    assert (event.payment.status, event.payment.amount, event.payment.currency) == ("succeeded", 4200, "EUR")
    assert (event.payment.provider_customer_id, event.payment.provider_invoice_id) == ("cus_1", "in_9")
    assert event.payment.billplane_payment_id is None  # a PaymentIntent billplane did not create


async def test_a_payment_partly_captured_is_what_was_received(stripe_adapter: StripeAdapter) -> None:
    (event,) = await _parse(
        stripe_adapter, "payment_intent.succeeded", _intent(status="succeeded", amount_received=3000)
    )
    assert event.payment is not None
    assert event.payment.amount == 3000


async def test_a_payment_intent_canceled_at_stripe_is_a_failed_payment(stripe_adapter: StripeAdapter) -> None:
    (event,) = await _parse(stripe_adapter, "payment_intent.canceled", _intent(status="canceled"))
    assert event.type == "payment.failed"
    assert event.payment is not None
    assert (event.payment.status, event.payment.failure_code) == ("failed", "canceled")


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"billplane_payment_id": "42"}, 42),
        ({"billplane_payment_id": "0"}, None),
        ({"billplane_payment_id": "-4"}, None),
        ({"billplane_payment_id": "4.2"}, None),
        ({"billplane_payment_id": "\u0664\u0662"}, None),  # Arabic-Indic digits: isdigit() alone would take them
        ({"billplane_payment_id": str(2**63)}, None),
        ({"order": "42"}, None),
    ],
)
async def test_a_payment_names_the_billplane_payment_it_charged(
    stripe_adapter: StripeAdapter, metadata: dict[str, str], expected: int | None
) -> None:
    # How a webhook settles billplane's own charge whose answer was lost (payment_intent_params sets it).
    (event,) = await _parse(stripe_adapter, "payment_intent.succeeded", _intent(status="succeeded", metadata=metadata))
    assert event.payment is not None
    assert event.payment.billplane_payment_id == expected


async def test_payment_failed_carries_the_decline_code(stripe_adapter: StripeAdapter) -> None:
    error = {"type": "card_error", "code": "card_declined", "decline_code": "expired_card", "message": "Expired."}
    (event,) = await _parse(
        stripe_adapter,
        "payment_intent.payment_failed",
        _intent(status="requires_payment_method", last_payment_error=error),
    )
    assert event.type == "payment.failed"
    assert event.payment is not None
    assert (event.payment.status, event.payment.failure_code, event.payment.failure_message) == (
        "failed",
        "expired_card",
        "Expired.",
    )


async def test_charge_refunded_maps_each_refund(stripe_adapter: StripeAdapter) -> None:
    refund = objects.fixture("refund", id="re_9", amount=500, payment_intent="pi_9", status="succeeded")
    charge = objects.fixture("charge", id="ch_9", refunds={"object": "list", "data": [refund]})
    (event,) = await _parse(stripe_adapter, "charge.refunded", charge)
    assert (event.type, event.provider_object_id, event.provider_type) == ("refund.updated", "re_9", "charge.refunded")
    assert event.refund is not None
    assert (event.refund.status, event.refund.amount, event.refund.provider_payment_id) == ("succeeded", 500, "pi_9")


async def test_each_refund_of_a_charge_refunded_has_its_own_event_id_again_on_redelivery(
    stripe_adapter: StripeAdapter,
) -> None:
    # billplane stores one row per (account, event id): refunds sharing the delivery's id would
    # keep only the first. A redelivery must give the same ids, so that it is still dropped.
    refunds = [
        objects.fixture("refund", id=f"re_{n}", amount=100 * n, payment_intent="pi_9", status="succeeded")
        for n in (1, 2)
    ]
    charge = objects.fixture("charge", id="ch_9", refunds={"object": "list", "data": refunds})
    headers, body, payload = _signed("charge.refunded", charge)
    first = await stripe_adapter.parse_webhook(headers, body)
    again = await stripe_adapter.parse_webhook(headers, body)
    assert [event.provider_object_id for event in first] == ["re_1", "re_2"]
    assert len({event.event_id for event in first}) == 2
    assert [event.event_id for event in again] == [event.event_id for event in first]
    assert all(event.event_id.startswith(payload["id"]) for event in first)  # still names Stripe's event


async def test_charge_refunded_without_its_refunds_yields_nothing(stripe_adapter: StripeAdapter) -> None:
    charge = objects.fixture("charge", id="ch_9")
    charge.pop("refunds", None)
    assert await _parse(stripe_adapter, "charge.refunded", charge) == []


@pytest.mark.parametrize(
    ("stripe_type", "status", "expected"),
    [
        ("refund.created", "pending", "pending"),
        ("refund.updated", "succeeded", "succeeded"),
        ("refund.failed", "failed", "failed"),
    ],
)
async def test_refund_events(stripe_adapter: StripeAdapter, stripe_type: str, status: str, expected: str) -> None:
    refund = objects.fixture("refund", id="re_7", status=status, failure_reason="lost_or_stolen_card")
    (event,) = await _parse(stripe_adapter, stripe_type, refund)
    assert event.refund is not None
    assert (event.type, event.refund.status) == ("refund.updated", expected)
    assert event.refund.failure_message == ("lost_or_stolen_card" if expected == "failed" else None)


async def test_a_refund_event_names_the_billplane_refund_it_carries(stripe_adapter: StripeAdapter) -> None:
    ours = objects.fixture("refund", id="re_8", status="succeeded", metadata={"billplane_refund_id": "42"})
    theirs = objects.fixture("refund", id="re_9", status="succeeded", metadata={"billplane_refund_id": "x"})
    (named,) = await _parse(stripe_adapter, "refund.updated", ours)
    (unnamed,) = await _parse(stripe_adapter, "refund.updated", theirs)
    assert named.refund is not None
    assert unnamed.refund is not None
    assert (named.refund.billplane_refund_id, unnamed.refund.billplane_refund_id) == (42, None)


def _method(customer: str | None) -> dict[str, Any]:
    # Stripe's example card: fingerprint, billing details and wallet included, none of which billplane keeps.
    return objects.fixture("payment_method", id="pm_9", customer=customer)


CARD = ProviderPaymentMethod(
    provider_payment_method_id="pm_9", type="card", brand="visa", last4="4242", exp_month=8, exp_year=2030
)


@pytest.mark.parametrize(
    ("stripe_type", "billplane_type"),
    [
        ("payment_method.attached", "payment_method.attached"),
        ("payment_method.updated", "payment_method.updated"),
        ("payment_method.automatically_updated", "payment_method.updated"),
    ],
)
async def test_payment_method_events_name_the_customer(
    stripe_adapter: StripeAdapter, stripe_type: str, billplane_type: str
) -> None:
    (event,) = await _parse(stripe_adapter, stripe_type, _method("cus_9"))
    assert (event.type, event.provider_object_id, event.provider_type) == (billplane_type, "pm_9", stripe_type)
    assert event.payment_method == msgspec.structs.replace(CARD, provider_customer_id="cus_9")
    assert (event.subscription, event.invoice, event.payment, event.refund) == (None, None, None, None)


async def test_an_expanded_customer_is_read_by_its_id(stripe_adapter: StripeAdapter) -> None:
    method = {**_method(None), "customer": objects.fixture("customer", id="cus_9")}
    (event,) = await _parse(stripe_adapter, "payment_method.updated", method)
    assert event.payment_method is not None
    assert event.payment_method.provider_customer_id == "cus_9"


async def test_a_detached_method_names_no_customer(stripe_adapter: StripeAdapter) -> None:
    # Stripe sends the method as it is now, of no customer; the former one only in previous_attributes.
    at = now()
    payload = events.event(
        "payment_method.detached", _method(None), created=int(at.timestamp()), previous_attributes={"customer": "cus_9"}
    )
    headers, body = events.sign(payload, [WEBHOOK_SECRET], at)
    (event,) = await stripe_adapter.parse_webhook(_headers(headers), body)
    assert (event.type, event.provider_object_id) == ("payment_method.detached", "pm_9")
    assert event.payment_method == CARD
    assert event.payment_method.provider_customer_id is None


@pytest.mark.parametrize(
    "stripe_type",
    ["payment_method.attached", "payment_method.updated", "payment_method.automatically_updated"],
)
async def test_a_payment_method_event_carries_nothing_that_could_pay(
    stripe_adapter: StripeAdapter, stripe_type: str
) -> None:
    method = _method("cus_9")
    (event,) = await _parse(stripe_adapter, stripe_type, method)
    encoded = msgspec.json.encode(event).decode()
    details = method["billing_details"]
    kept_out = (method["card"]["fingerprint"], method["card"]["funding"], details["email"], details["phone"])
    assert all(value and value not in encoded for value in (*kept_out, details["address"]["line1"]))


async def test_unmapped_types_are_left_out(stripe_adapter: StripeAdapter) -> None:
    assert await _parse(stripe_adapter, "plan.created", objects.fixture("plan")) == []
    assert "plan.created" not in MAPPED


def test_every_event_type_of_the_brief_is_mapped() -> None:
    assert {
        "customer.created",
        "customer.updated",
        "customer.deleted",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "invoice.paid",
        "invoice.payment_failed",
        "invoice.finalized",
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "charge.refunded",
        "payment_method.attached",
        "payment_method.updated",
        "payment_method.automatically_updated",
        "payment_method.detached",
    } <= MAPPED
