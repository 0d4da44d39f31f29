"""Sandbox webhooks: Standard Webhooks signatures, verified and normalized into ProviderEvents."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from billplane_sandbox import events
from billplane_sandbox.signing import signature
from billplane_sandbox.wire import SandboxEvent

from billplane.plugins import (
    ChargeResult,
    ProviderAdapter,
    ProviderEvent,
    ProviderPaymentMethod,
    ProviderSubscription,
    RefundResult,
    WebhookVerificationError,
)
from tests.providers.sandbox.conftest import WEBHOOK_SECRET, MakeAdapter

WHEN = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
START, END = WHEN, WHEN + timedelta(days=31)
Payload = ProviderSubscription | ChargeResult | RefundResult | ProviderPaymentMethod | None


def parse(adapter: ProviderAdapter, headers: Mapping[str, str], body: bytes) -> list[ProviderEvent]:
    return asyncio.run(adapter.parse_webhook(headers, body))


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        (
            events.subscription_updated(
                "sbx_sub_1", "past_due", current_period_start=START, current_period_end=END, occurred_at=WHEN
            ),
            ProviderSubscription(
                provider_id="sbx_sub_1", status="past_due", current_period_start=START, current_period_end=END
            ),
        ),
        (
            events.subscription_canceled("sbx_sub_1", occurred_at=WHEN),
            ProviderSubscription(provider_id="sbx_sub_1", status="canceled", canceled_at=WHEN),
        ),
        (
            events.payment_succeeded("sbx_pay_1", occurred_at=WHEN),
            ChargeResult(provider_payment_id="sbx_pay_1", status="succeeded"),
        ),
        (
            events.payment_failed(
                "sbx_pay_1", failure_code="insufficient_funds", failure_message="No", occurred_at=WHEN
            ),
            ChargeResult(
                provider_payment_id="sbx_pay_1",
                status="failed",
                failure_code="insufficient_funds",
                failure_message="No",
            ),
        ),
        (
            events.refund_updated("sbx_re_1", "failed", failure_message="Closed account.", occurred_at=WHEN),
            RefundResult(provider_refund_id="sbx_re_1", status="failed", failure_message="Closed account."),
        ),
        (events.customer_updated("sbx_cus_1", occurred_at=WHEN), None),
        (events.customer_deleted("sbx_cus_1", occurred_at=WHEN), None),
        (
            events.payment_method_attached("pm_sandbox_succeeds.abc", "sbx_cus_1", occurred_at=WHEN),
            ProviderPaymentMethod(
                provider_payment_method_id="pm_sandbox_succeeds.abc", brand="sandbox", provider_customer_id="sbx_cus_1"
            ),
        ),
        (
            events.payment_method_updated(
                "pm_sandbox_succeeds.abc",
                "sbx_cus_1",
                card=events.CardDetails(brand="visa", last4="4242", exp_month=12, exp_year=2031),
                occurred_at=WHEN,
            ),
            ProviderPaymentMethod(
                provider_payment_method_id="pm_sandbox_succeeds.abc",
                brand="visa",
                last4="4242",
                exp_month=12,
                exp_year=2031,
                provider_customer_id="sbx_cus_1",
            ),
        ),
        (
            events.payment_method_detached("pm_sandbox_succeeds.abc", occurred_at=WHEN),
            ProviderPaymentMethod(provider_payment_method_id="pm_sandbox_succeeds.abc", brand="sandbox"),
        ),
    ],
    ids=lambda value: getattr(value, "type", ""),
)
def test_every_event_kind_is_normalized(make_adapter: MakeAdapter, event: SandboxEvent, payload: Payload) -> None:
    webhook = events.sign(event, WEBHOOK_SECRET)
    assert webhook.headers["webhook-id"] == event.id
    [parsed] = parse(make_adapter(), webhook.headers, webhook.body)
    assert (parsed.event_id, parsed.type, parsed.occurred_at) == (event.id, event.type, WHEN)
    assert parsed.provider_object_id == event.data.id
    assert parsed.subscription == (payload if isinstance(payload, ProviderSubscription) else None)
    assert parsed.payment == (payload if isinstance(payload, ChargeResult) else None)
    assert parsed.refund == (payload if isinstance(payload, RefundResult) else None)
    assert parsed.payment_method == (payload if isinstance(payload, ProviderPaymentMethod) else None)


def test_event_ids_are_new_unless_given() -> None:
    assert events.payment_succeeded("p").id != events.payment_succeeded("p").id
    assert events.payment_succeeded("p", event_id="evt_fixed").id == "evt_fixed"


def test_a_rotated_secret_is_accepted_beside_the_old_one(make_adapter: MakeAdapter) -> None:
    webhook = events.sign(events.payment_succeeded("sbx_pay_1"), WEBHOOK_SECRET)
    headers = dict(webhook.headers)
    stamp = int(headers["webhook-timestamp"])
    old = signature("whsec_old", headers["webhook-id"], stamp, webhook.body)
    headers["webhook-signature"] = f"{old} {headers['webhook-signature']}"
    assert parse(make_adapter(), headers, webhook.body)
    headers["webhook-signature"] = old
    with pytest.raises(WebhookVerificationError, match="no webhook signature matches"):
        parse(make_adapter(), headers, webhook.body)


@pytest.mark.parametrize("minutes", [-4, 4])
def test_timestamps_within_five_minutes_are_accepted(make_adapter: MakeAdapter, minutes: int) -> None:
    when = datetime.now(UTC) + timedelta(minutes=minutes)
    webhook = events.sign(events.payment_succeeded("sbx_pay_1"), WEBHOOK_SECRET, timestamp=when)
    assert parse(make_adapter(), webhook.headers, webhook.body)


@pytest.mark.parametrize(("minutes", "message"), [(-6, "too old"), (6, "in the future")])
def test_older_or_later_timestamps_are_refused(make_adapter: MakeAdapter, minutes: int, message: str) -> None:
    when = datetime.now(UTC) + timedelta(minutes=minutes)
    webhook = events.sign(events.payment_succeeded("sbx_pay_1"), WEBHOOK_SECRET, timestamp=when)
    with pytest.raises(WebhookVerificationError, match=message):
        parse(make_adapter(), webhook.headers, webhook.body)


def _signed(body: bytes, msg_id: str = "evt_1") -> dict[str, str]:
    stamp = int(datetime.now(UTC).timestamp())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": signature(WEBHOOK_SECRET, msg_id, stamp, body),
    }


def _event(type_: str, created: str, data: Mapping[str, object]) -> bytes:
    return msgspec.json.encode({"id": "evt_1", "type": type_, "created": created, "data": data})


UTC_NOON = "2025-01-01T12:00:00Z"
PAYMENT = {"object": "payment", "id": "p", "status": "succeeded"}
METHOD = {"object": "payment_method", "id": "pm", "customer": "sbx_cus_1"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "malformed"),
        (b"[]", "malformed"),
        (_event("payment.refunded", UTC_NOON, PAYMENT), "malformed"),
        (_event("payment.succeeded", "2025-01-01T12:00:00", PAYMENT), "malformed"),  # no time zone
        (_event("payment.succeeded", UTC_NOON, {**PAYMENT, "object": "refund"}), "cannot carry a refund"),
        (_event("payment.succeeded", UTC_NOON, {**PAYMENT, "status": "on_fire"}), "malformed"),
        (_event("payment_method.detached", UTC_NOON, METHOD), "customer must be null"),
        (_event("payment_method.attached", UTC_NOON, {**METHOD, "customer": None}), "must name the customer"),
        (_event("payment_method.updated", UTC_NOON, {**METHOD, "customer": None}), "must name the customer"),
        (_event("payment_method.updated", UTC_NOON, {**METHOD, "exp_month": 13}), "malformed"),
        (_event("payment_method.updated", UTC_NOON, {**METHOD, "last4": "4242424242424242"}), "malformed"),
        (_event("payment.succeeded", UTC_NOON, METHOD), "cannot carry a payment_method"),
    ],
)
def test_a_signed_but_malformed_body_is_refused(make_adapter: MakeAdapter, body: bytes, message: str) -> None:
    with pytest.raises(WebhookVerificationError, match=message):
        parse(make_adapter(), _signed(body), body)


def test_headers_are_required_and_checked(make_adapter: MakeAdapter) -> None:
    webhook = events.sign(events.payment_succeeded("sbx_pay_1"), WEBHOOK_SECRET)
    for missing in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        headers = {name: value for name, value in webhook.headers.items() if name != missing}
        with pytest.raises(WebhookVerificationError, match="headers are required"):
            parse(make_adapter(), headers, webhook.body)
    with pytest.raises(WebhookVerificationError, match="not a number"):
        parse(make_adapter(), {**webhook.headers, "webhook-timestamp": "soon"}, webhook.body)
    other_id = {**webhook.headers, "webhook-id": "evt_other"}
    with pytest.raises(WebhookVerificationError, match="no webhook signature matches"):
        parse(make_adapter(), other_id, webhook.body)
    capitalized = {name.title(): value for name, value in webhook.headers.items()}
    assert parse(make_adapter(), capitalized, webhook.body)


def test_an_account_without_a_webhook_secret_verifies_nothing(make_adapter: MakeAdapter) -> None:
    webhook = events.sign(events.payment_succeeded("sbx_pay_1"), WEBHOOK_SECRET)
    with pytest.raises(WebhookVerificationError, match="no webhook secret"):
        parse(make_adapter(webhook_secret=None), webhook.headers, webhook.body)
