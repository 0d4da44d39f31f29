"""A PaymentIntent left waiting on the customer is canceled before its charge is recorded failed:
dunning charges again, and the first one must not move money after that."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from billplane_stripe.adapter import StripeAdapter

from billplane.plugins import ChargeRequest, ChargeResult, RetryableProviderError
from tests.providers.stripe import helpers
from tests.providers.stripe.fake_stripe import resources
from tests.providers.stripe.fake_stripe.server import FakeStripe

pytestmark = pytest.mark.anyio
CANCEL = "/v1/payment_intents/{intent}/cancel"


def _charge() -> ChargeRequest:
    return ChargeRequest(payment_id=41, amount=4200, currency="EUR", payment_method=resources.REQUIRES_ACTION)


def _only_intent(fake_stripe: FakeStripe) -> dict[str, Any]:
    (intent,) = fake_stripe.store.payment_intents.values()
    return intent


def _cancels(fake_stripe: FakeStripe) -> list[str | None]:
    return [r.idempotency_key for r in fake_stripe.requests if r.template == CANCEL]


async def _charge_after_failed_cancel(adapter: StripeAdapter, fake_stripe: FakeStripe, key: str) -> None:
    """A first attempt that created the PaymentIntent but could not cancel it."""
    fake_stripe.fail_next(500, path="/v1/payment_intents/")  # the cancel: the create's path has no slash after
    with pytest.raises(RetryableProviderError):
        await adapter.charge(_charge(), idempotency_key=key)


def _is_abandoned(result: ChargeResult) -> None:
    assert (result.status, result.failure_code) == ("failed", "requires_action")
    assert result.failure_message is not None
    assert "customer's action" in result.failure_message
    assert "canceled" in result.failure_message


async def test_an_intent_waiting_on_the_customer_is_canceled_and_the_charge_failed(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    key = helpers.key()
    result = await stripe_adapter.charge(_charge(), idempotency_key=key)
    intent = _only_intent(fake_stripe)
    assert (result.provider_payment_id, intent["status"]) == (intent["id"], "canceled")
    assert intent["cancellation_reason"] == "abandoned"
    _is_abandoned(result)
    cancel = fake_stripe.last("POST", CANCEL)
    assert cancel.path == f"/v1/payment_intents/{intent['id']}/cancel"
    assert (cancel.params, cancel.idempotency_key) == ({"cancellation_reason": "abandoned"}, f"{key}:cancel")


async def test_a_retry_after_a_lost_answer_cancels_the_one_intent_again(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    key = helpers.key()
    first = await stripe_adapter.charge(_charge(), idempotency_key=key)
    again = await stripe_adapter.charge(_charge(), idempotency_key=key)  # Stripe replays both answers
    assert _only_intent(fake_stripe)["status"] == "canceled"
    assert _cancels(fake_stripe) == [f"{key}:cancel"] * 2
    assert first == again
    _is_abandoned(again)


async def test_a_cancel_that_failed_is_retried_and_never_recorded_failed_before(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    key = helpers.key()
    await _charge_after_failed_cancel(stripe_adapter, fake_stripe, key)
    assert _only_intent(fake_stripe)["status"] == "requires_action"  # could still move money: no answer yet
    result = await stripe_adapter.charge(_charge(), idempotency_key=key)
    _is_abandoned(result)
    assert _only_intent(fake_stripe)["status"] == "canceled"


async def test_an_intent_completed_before_the_cancel_is_succeeded(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    key = helpers.key()
    await _charge_after_failed_cancel(stripe_adapter, fake_stripe, key)
    resources.complete_action(fake_stripe.store, _only_intent(fake_stripe)["id"])
    result = await stripe_adapter.charge(_charge(), idempotency_key=key)
    assert (result.status, result.failure_code, result.amount) == ("succeeded", None, 4200)
    assert _only_intent(fake_stripe)["status"] == "succeeded"
    assert fake_stripe.last("POST", CANCEL).status == 400  # payment_intent_unexpected_state


async def test_an_intent_canceled_meanwhile_is_failed(stripe_adapter: StripeAdapter, fake_stripe: FakeStripe) -> None:
    key = helpers.key()
    await _charge_after_failed_cancel(stripe_adapter, fake_stripe, key)
    intent_id = _only_intent(fake_stripe)["id"]
    resources.cancel_payment_intent(fake_stripe.store, {"intent": intent_id}, {})  # in the Dashboard, say
    result = await stripe_adapter.charge(_charge(), idempotency_key=key)
    assert (result.provider_payment_id, result.status, result.failure_code) == (intent_id, "failed", "canceled")


async def test_reconciliation_reads_an_intent_waiting_on_the_customer_as_pending(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    # Made by an earlier billplane (or a charge whose cancel never got through): not failed while
    # the customer can still complete it, or dunning would charge them a second time.
    request = _charge()
    metadata = {"billplane_payment_id": "41", **helpers.TENANT_METADATA}
    params = {"amount": "4200", "currency": "eur", "payment_method": request.payment_method, "metadata": metadata}
    intent_id = resources.create_payment_intent(fake_stripe.store, {}, params)["id"]
    since = datetime.now(UTC) - timedelta(minutes=10)

    found = await stripe_adapter.find_payment(request, idempotency_key=helpers.key(), created_after=since)
    status = await stripe_adapter.charge_status(intent_id)

    assert found is not None
    assert status is not None
    assert (found.provider_payment_id, found.status, status.status) == (intent_id, "pending", "pending")
    resources.complete_action(fake_stripe.store, intent_id)
    assert await stripe_adapter.charge_status(intent_id) == msgspec.structs.replace(status, status="succeeded")


async def test_an_invoice_whose_payment_needs_the_customer_stays_open(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    # Stripe answers pay with a card error and keeps the invoice's PaymentIntent for the customer;
    # an invoice is paid once, so dunning paying it again cannot charge twice: nothing is canceled.
    customer = await helpers.customer(stripe_adapter)
    fake_stripe.store.customers[customer]["invoice_settings"]["default_payment_method"] = resources.REQUIRES_ACTION
    invoice = fake_stripe.store.open_invoice(customer, 4200)
    request = ChargeRequest(
        payment_id=42, amount=4200, currency="EUR", provider_invoice_id=invoice, provider_customer_id=customer
    )
    result = await stripe_adapter.charge(request, idempotency_key=helpers.key())
    assert (result.status, result.failure_code) == ("failed", "authentication_required")
    assert fake_stripe.store.invoices[invoice]["status"] == "open"
    assert fake_stripe.store.payment_intents[result.provider_payment_id]["status"] == "requires_action"
    assert not _cancels(fake_stripe)
