"""Webhook verification through PayPal's API, local refusals, and each event type's mapping."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from billplane.plugins import ProviderEvent, RetryableProviderError, WebhookVerificationError
from tests.providers.paypal import payloads
from tests.providers.paypal.conftest import WEBHOOK_ID, MakeAdapter
from tests.providers.paypal.fake_paypal import CERT_URL, FakePayPal, sign_webhook


def _delivery(
    event: dict[str, Any], *, webhook_id: str = WEBHOOK_ID, at: datetime | None = None
) -> tuple[dict[str, str], bytes]:
    body = json.dumps(event).encode()
    headers = sign_webhook(webhook_id, body, at or datetime.now(UTC))
    return {name.lower(): value for name, value in headers.items()}, body


async def _one(make_adapter: MakeAdapter, event: dict[str, Any]) -> ProviderEvent:
    headers, body = _delivery(event)
    events = await make_adapter().parse_webhook(headers, body)
    assert len(events) == 1
    return events[0]


async def test_a_verified_delivery_is_checked_by_paypal_with_the_accounts_webhook_id(
    make_adapter: MakeAdapter, paypal: FakePayPal
) -> None:
    headers, body = _delivery(payloads.subscription_event("BILLING.SUBSCRIPTION.ACTIVATED", "ACTIVE"))
    events = await make_adapter().parse_webhook(headers, body)
    assert [event.type for event in events] == ["subscription.updated"]
    verify = paypal.posts()[-1]
    assert verify.path == "/v1/notifications/verify-webhook-signature"
    assert verify.headers.get("paypal-request-id")  # a fresh one: never a replayed answer
    sent = json.loads(verify.body)
    assert sent["webhook_id"] == WEBHOOK_ID
    assert sent["transmission_id"] == headers["paypal-transmission-id"]
    assert sent["cert_url"] == CERT_URL
    assert verify.body.endswith(b'"webhook_event":' + body + b"}")  # the event exactly as received


async def test_a_delivery_for_another_webhook_fails_verification(make_adapter: MakeAdapter) -> None:
    headers, body = _delivery(payloads.sale_completed(), webhook_id="8PT597110X687430LKGECATA")
    with pytest.raises(WebhookVerificationError, match="did not verify"):
        await make_adapter().parse_webhook(headers, body)


async def test_a_tampered_body_fails_verification(make_adapter: MakeAdapter) -> None:
    headers, body = _delivery(payloads.sale_completed(total="30.00"))
    with pytest.raises(WebhookVerificationError):
        await make_adapter().parse_webhook(headers, body.replace(b'"30.00"', b'"3000.00"'))


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_an_unreachable_verification_is_retryable(
    make_adapter: MakeAdapter, paypal: FakePayPal, status: int
) -> None:
    paypal.fail_next("/v1/notifications/verify-webhook-signature", status)
    headers, body = _delivery(payloads.sale_completed())
    with pytest.raises(RetryableProviderError):
        await make_adapter().parse_webhook(headers, body)


async def test_a_slow_verification_is_retryable(
    make_adapter: MakeAdapter, paypal: FakePayPal, monkeypatch: pytest.MonkeyPatch
) -> None:
    from billplane_paypal import adapter  # noqa: PLC0415 - patched for this test only

    monkeypatch.setattr(adapter, "VERIFY_TIMEOUT", 0.1)
    paypal.fail_next("/v1/notifications/verify-webhook-signature", None, delay=0.5)
    headers, body = _delivery(payloads.sale_completed())
    with pytest.raises(RetryableProviderError, match="did not answer"):
        await make_adapter().parse_webhook(headers, body)


def _without(headers: dict[str, str], name: str) -> dict[str, str]:
    return {key: value for key, value in headers.items() if key != name}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda h: _without(h, "paypal-transmission-sig"), "lacks"),
        (lambda h: _without(h, "paypal-cert-url"), "lacks"),
        (lambda h: {**h, "paypal-cert-url": "https://evil.example/v1/notifications/certs/CERT-1"}, "PayPal host"),
        (lambda h: {**h, "paypal-cert-url": "https://api.paypal.com.evil.example/certs/C"}, "PayPal host"),
        (lambda h: {**h, "paypal-cert-url": "http://api.paypal.com/v1/notifications/certs/C"}, "PayPal host"),
        (lambda h: {**h, "paypal-cert-url": "https://api.paypal.com:8443/v1/notifications/certs/C"}, "PayPal host"),
        (lambda h: {**h, "paypal-transmission-time": "yesterday"}, "not a time"),
        (lambda h: {**h, "paypal-transmission-time": "2026-11-27T08:00:00"}, "time zone"),
    ],
)
async def test_suspicious_deliveries_are_refused_before_asking_paypal(
    make_adapter: MakeAdapter, paypal: FakePayPal, change: Any, message: str
) -> None:
    headers, body = _delivery(payloads.sale_completed())
    before = len(paypal.log)
    with pytest.raises(WebhookVerificationError, match=message):
        await make_adapter().parse_webhook(change(headers), body)
    assert len(paypal.log) == before


@pytest.mark.parametrize("offset", [timedelta(minutes=-6), timedelta(minutes=6), timedelta(days=-2)])
async def test_deliveries_outside_the_tolerance_are_refused(make_adapter: MakeAdapter, offset: timedelta) -> None:
    headers, body = _delivery(payloads.sale_completed(), at=datetime.now(UTC) + offset)
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        await make_adapter().parse_webhook(headers, body)


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b""])
async def test_a_body_that_is_not_an_object_is_refused(make_adapter: MakeAdapter, body: bytes) -> None:
    headers, _ = _delivery(payloads.sale_completed())
    with pytest.raises(WebhookVerificationError):
        await make_adapter().parse_webhook(headers, body)


async def test_a_verified_but_malformed_event_is_refused(make_adapter: MakeAdapter) -> None:
    event = payloads.sale_completed()
    del event["resource"]["amount"]
    headers, body = _delivery(event)
    with pytest.raises(WebhookVerificationError, match="malformed"):
        await make_adapter().parse_webhook(headers, body)


async def test_event_kinds_billplane_does_not_need_are_left_out(make_adapter: MakeAdapter) -> None:
    event = payloads.sale_completed()
    event["event_type"] = "CUSTOMER.DISPUTE.CREATED"
    headers, body = _delivery(event)
    assert await make_adapter().parse_webhook(headers, body) == []


@pytest.mark.parametrize(
    ("event_type", "paypal_status", "kind", "status"),
    [
        ("BILLING.SUBSCRIPTION.ACTIVATED", "ACTIVE", "subscription.updated", "active"),
        ("BILLING.SUBSCRIPTION.SUSPENDED", "SUSPENDED", "subscription.updated", "paused"),
        ("BILLING.SUBSCRIPTION.UPDATED", "APPROVAL_PENDING", "subscription.updated", "incomplete"),
        ("BILLING.SUBSCRIPTION.UPDATED", "APPROVED", "subscription.updated", "incomplete"),
        ("BILLING.SUBSCRIPTION.CANCELLED", "CANCELLED", "subscription.canceled", "canceled"),
        ("BILLING.SUBSCRIPTION.EXPIRED", "EXPIRED", "subscription.canceled", "canceled"),
        ("BILLING.SUBSCRIPTION.PAYMENT.FAILED", "ACTIVE", "subscription.updated", "past_due"),
    ],
)
async def test_subscription_events(
    make_adapter: MakeAdapter, event_type: str, paypal_status: str, kind: str, status: str
) -> None:
    at = datetime(2026, 11, 27, 8, 0, 0, tzinfo=UTC)
    event = payloads.subscription_event(event_type, paypal_status, at=at)
    event["create_time"] = "2026-11-27T08:00:00.123Z"
    mapped = await _one(make_adapter, event)
    assert (mapped.type, mapped.provider_type, mapped.event_id) == (kind, event_type, event["id"])
    assert mapped.provider_object_id == payloads.SUBSCRIPTION_ID
    assert mapped.occurred_at == datetime(2026, 11, 27, 8, 0, 0, 123000, tzinfo=UTC)
    assert mapped.subscription is not None
    assert (mapped.subscription.status, mapped.subscription.quantity) == (status, 3)
    assert mapped.subscription.current_period_end == datetime(2026, 12, 20, 10, 0, tzinfo=UTC)


async def test_an_active_subscription_with_an_unpaid_balance_is_past_due(make_adapter: MakeAdapter) -> None:
    event = payloads.subscription_event("BILLING.SUBSCRIPTION.UPDATED", "ACTIVE", outstanding="30.00")
    mapped = await _one(make_adapter, event)
    assert mapped.subscription is not None
    assert mapped.subscription.status == "past_due"


@pytest.mark.parametrize(("note", "status"), [(None, "unpaid"), ("Paused in billplane", "paused")])
async def test_a_subscription_paypal_suspended_for_failed_payments_is_unpaid(
    make_adapter: MakeAdapter, note: str | None, status: str
) -> None:
    # PayPal suspends at the plan's failure threshold, and bills no more until the balance is
    # paid; billplane's own suspension (its reason kept as the note) stays a pause.
    event = payloads.subscription_event("BILLING.SUBSCRIPTION.SUSPENDED", "SUSPENDED", outstanding="30.00")
    if note is not None:
        event["resource"]["status_change_note"] = note
    mapped = await _one(make_adapter, event)
    assert mapped.subscription is not None
    assert mapped.subscription.status == status


def _held_by_paypal(paypal: FakePayPal, *, outstanding: str) -> str:
    """A new subscription PayPal holds (the fake lives for the session), ``outstanding`` left to pay."""
    subscription_id = f"I-{uuid.uuid4().hex[:12].upper()}"
    resource = payloads.subscription_event(
        "BILLING.SUBSCRIPTION.UPDATED", "ACTIVE", outstanding=outstanding, subscription_id=subscription_id
    )
    with paypal.lock:
        paypal.subscriptions[subscription_id] = resource["resource"]
    return subscription_id


@pytest.mark.parametrize(("outstanding", "status"), [("0.00", "active"), ("30.00", "past_due")])
async def test_a_completed_sale_brings_the_subscriptions_state_as_paypal_has_it_after(
    make_adapter: MakeAdapter, paypal: FakePayPal, outstanding: str, status: str
) -> None:
    # PayPal sends no subscription event when a payment recovers a failed cycle: its count of
    # failed payments resets, which only a read of the subscription shows.
    held = _held_by_paypal(paypal, outstanding=outstanding)
    sale = payloads.sale_completed(at=datetime(2026, 11, 27, 8, 0, tzinfo=UTC), subscription_id=held)
    headers, body = _delivery(sale)
    payment, after = await make_adapter().parse_webhook(headers, body)
    assert payment.type == "payment.succeeded"
    assert (after.type, after.event_id, after.occurred_at) == (
        "subscription.updated",
        f"{sale['id']}:subscription",
        payment.occurred_at,
    )
    assert after.provider_object_id == held
    assert after.subscription is not None
    assert after.subscription.status == status


async def test_a_sale_whose_subscription_cannot_be_read_is_delivered_again(
    make_adapter: MakeAdapter, paypal: FakePayPal
) -> None:
    held = _held_by_paypal(paypal, outstanding="0.00")
    paypal.fail_next(f"/v1/billing/subscriptions/{held}", 503)
    headers, body = _delivery(payloads.sale_completed(subscription_id=held))
    with pytest.raises(RetryableProviderError):
        await make_adapter().parse_webhook(headers, body)


async def test_an_activated_subscription_in_its_trial_is_trialing(make_adapter: MakeAdapter) -> None:
    event = payloads.subscription_event("BILLING.SUBSCRIPTION.ACTIVATED", "ACTIVE", trial=True)
    mapped = await _one(make_adapter, event)
    assert mapped.subscription is not None
    assert (mapped.subscription.status, mapped.subscription.trial_end) == (
        "trialing",
        datetime(2026, 12, 20, 10, 0, tzinfo=UTC),
    )


@pytest.mark.parametrize(("total", "currency", "minor"), [("30.00", "USD", 3000), ("4500", "JPY", 4500)])
async def test_a_completed_sale_is_a_payment_of_the_subscription(
    make_adapter: MakeAdapter, total: str, currency: str, minor: int
) -> None:
    mapped = await _one(make_adapter, payloads.sale_completed(total=total, currency=currency))
    assert (mapped.type, mapped.provider_object_id) == ("payment.succeeded", payloads.SALE_ID)
    assert mapped.payment is not None
    assert (mapped.payment.status, mapped.payment.amount, mapped.payment.currency) == ("succeeded", minor, currency)
    assert mapped.payment.provider_subscription_id == payloads.SUBSCRIPTION_ID


async def test_a_denied_sale_is_a_failed_payment(make_adapter: MakeAdapter) -> None:
    event = payloads.sale_completed()
    event["event_type"], event["resource"]["state"] = "PAYMENT.SALE.DENIED", "denied"
    mapped = await _one(make_adapter, event)
    assert (mapped.type, mapped.provider_object_id) == ("payment.failed", payloads.SALE_ID)
    assert mapped.payment is not None
    assert (mapped.payment.status, mapped.payment.failure_code, mapped.payment.amount) == ("failed", "denied", 3000)


@pytest.mark.parametrize(
    ("event_type", "total"), [("PAYMENT.SALE.REFUNDED", "5.00"), ("PAYMENT.SALE.REVERSED", "-30.00")]
)
async def test_sale_refunds_and_reversals_are_refunds_of_the_sale(
    make_adapter: MakeAdapter, event_type: str, total: str
) -> None:
    mapped = await _one(make_adapter, payloads.sale_refunded(event_type, total=total))
    assert (mapped.type, mapped.provider_type) == ("refund.updated", event_type)
    assert mapped.refund is not None
    assert mapped.refund.provider_payment_id == payloads.SALE_ID
    assert (mapped.refund.status, mapped.refund.amount, mapped.refund.currency) == (
        "succeeded",
        abs(int(total.replace(".", ""))),
        "USD",
    )


async def test_a_completed_capture_is_a_payment(make_adapter: MakeAdapter) -> None:
    mapped = await _one(make_adapter, payloads.capture_completed(value="20.00"))
    assert (mapped.type, mapped.provider_object_id) == ("payment.succeeded", payloads.CAPTURE_ID)
    assert mapped.payment is not None
    assert (mapped.payment.amount, mapped.payment.currency, mapped.payment.status) == (2000, "USD", "succeeded")


async def test_a_capture_refund_names_its_capture(make_adapter: MakeAdapter) -> None:
    mapped = await _one(make_adapter, payloads.capture_refunded(value="7.5", currency="EUR"))
    assert mapped.type == "refund.updated"
    assert mapped.refund is not None
    assert (mapped.refund.provider_payment_id, mapped.refund.amount, mapped.refund.currency) == (
        payloads.CAPTURE_ID,
        750,
        "EUR",
    )


@pytest.mark.parametrize(
    ("invoice_id", "billplane_id"),
    [
        ("billplane-refund-1-42", 42),  # this adapter's tenant's (1) refund 42
        ("billplane-refund-7-42", None),  # tenant 7's, on a PayPal account both connected
        ("billplane-refund-42", 42),  # as sent before the tenant was part of it
        (None, None),
        ("INV-42", None),
        ("billplane-refund-x", None),
        ("billplane-refund-7-x", None),
        ("billplane-refund-7-8-42", None),
    ],
)
async def test_a_capture_refund_names_billplanes_refund_by_the_invoice_id_billplane_sent(
    make_adapter: MakeAdapter, invoice_id: str | None, billplane_id: int | None
) -> None:
    mapped = await _one(make_adapter, payloads.capture_refunded(invoice_id=invoice_id))
    assert mapped.refund is not None
    assert (mapped.refund.billplane_refund_id, mapped.refund.status) == (billplane_id, "succeeded")
