"""Charges (one-off and open invoices), declines, and refunds that never exceed what was paid."""

from __future__ import annotations

import pytest
from billplane_stripe.adapter import StripeAdapter

from billplane.plugins import ChargeRequest, ProviderError, RefundRequest
from tests.providers.stripe import helpers
from tests.providers.stripe.fake_stripe import resources
from tests.providers.stripe.fake_stripe.server import FakeStripe

pytestmark = pytest.mark.anyio
INSUFFICIENT = "pm_card_chargeDeclinedInsufficientFunds"


def _charge(**fields: object) -> ChargeRequest:
    return ChargeRequest(payment_id=21, amount=4200, currency="EUR", **fields)  # type: ignore[arg-type]


async def test_one_off_charge_is_a_confirmed_off_session_payment_intent(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    customer = await helpers.customer(stripe_adapter)
    result = await stripe_adapter.charge(
        _charge(payment_method=resources.SUCCEEDS, provider_customer_id=customer, description="setup fee"),
        idempotency_key=helpers.key(),
    )
    assert fake_stripe.last("POST", "/v1/payment_intents").params == {
        "amount": "4200",
        "currency": "eur",
        "payment_method": resources.SUCCEEDS,
        "confirm": "true",
        "off_session": "true",
        "customer": customer,
        "description": "setup fee",
        "metadata": {"billplane_payment_id": "21", **helpers.TENANT_METADATA},
    }
    assert result.status == "succeeded"
    assert result.provider_payment_id in fake_stripe.store.payment_intents
    assert (result.amount, result.currency, result.provider_customer_id) == (4200, "EUR", customer)


async def test_without_a_method_the_customers_default_is_charged(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    customer = await helpers.customer(stripe_adapter)
    fake_stripe.store.customers[customer]["invoice_settings"]["default_payment_method"] = resources.SUCCEEDS
    result = await stripe_adapter.charge(_charge(provider_customer_id=customer), idempotency_key=helpers.key())
    assert result.status == "succeeded"
    assert fake_stripe.last("POST", "/v1/payment_intents").params["payment_method"] == resources.SUCCEEDS


async def test_no_default_method_is_an_error_not_a_charge(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    customer = await helpers.customer(stripe_adapter)
    with pytest.raises(ProviderError) as caught:
        await stripe_adapter.charge(_charge(provider_customer_id=customer), idempotency_key=helpers.key())
    assert caught.value.code == "no_default_payment_method"
    assert not fake_stripe.store.payment_intents


async def test_a_ugx_charge_goes_in_hundredths_and_reads_back_in_shillings(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    # ISO 4217 counts UGX in whole shillings; Stripe in hundredths ("to charge 5 UGX, provide 500").
    request = ChargeRequest(payment_id=22, amount=50000, currency="UGX", payment_method=resources.SUCCEEDS)
    result = await stripe_adapter.charge(request, idempotency_key=helpers.key())
    assert fake_stripe.last("POST", "/v1/payment_intents").params["amount"] == "5000000"
    assert (result.amount, result.currency) == (50000, "UGX")


@pytest.mark.parametrize("currency", ["KWD", "BHD", "JOD", "OMR", "TND"])
async def test_a_three_decimal_amount_stripe_would_refuse_is_refused_before_any_call(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe, currency: str
) -> None:
    # Stripe wants the last of the three decimals to be 0; sent anyway, it fails on every retry.
    request = ChargeRequest(payment_id=23, amount=5125, currency=currency, payment_method=resources.SUCCEEDS)
    with pytest.raises(ProviderError) as caught:
        await stripe_adapter.charge(request, idempotency_key=helpers.key())
    assert caught.value.code == "amount_not_supported"
    refund = RefundRequest(refund_id=8, provider_payment_id="pi_1", amount=5125, currency=currency)
    with pytest.raises(ProviderError) as refused:
        await stripe_adapter.refund(refund, idempotency_key=helpers.key())
    assert refused.value.code == "amount_not_supported"
    assert not fake_stripe.requests


async def test_a_decline_is_failed_with_the_decline_code(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    customer = await helpers.customer(stripe_adapter)
    result = await stripe_adapter.charge(
        _charge(payment_method=INSUFFICIENT, provider_customer_id=customer), idempotency_key=helpers.key()
    )
    assert result.status == "failed"
    assert result.failure_code == "insufficient_funds"
    assert result.failure_message == "Your card was declined."
    # The PaymentIntent Stripe made for the attempt, so that its later events find the payment.
    assert fake_stripe.store.payment_intents[result.provider_payment_id]["status"] == "requires_payment_method"


async def test_a_retried_decline_is_the_same_failed_payment(stripe_adapter: StripeAdapter) -> None:
    key = helpers.key()
    first = await stripe_adapter.charge(_charge(payment_method=INSUFFICIENT), idempotency_key=key)
    again = await stripe_adapter.charge(_charge(payment_method=INSUFFICIENT), idempotency_key=key)
    assert first == again


async def test_an_open_invoice_is_paid_off_session(stripe_adapter: StripeAdapter, fake_stripe: FakeStripe) -> None:
    customer = await helpers.customer(stripe_adapter)
    fake_stripe.store.customers[customer]["invoice_settings"]["default_payment_method"] = resources.SUCCEEDS
    invoice = fake_stripe.store.open_invoice(customer, 4200)
    result = await stripe_adapter.charge(
        _charge(provider_invoice_id=invoice, provider_customer_id=customer), idempotency_key=helpers.key()
    )
    request = fake_stripe.last("POST", "/v1/invoices/{invoice}/pay")
    assert request.path == f"/v1/invoices/{invoice}/pay"
    assert request.params == {"off_session": "true", "expand": ["payments"]}
    assert result.status == "succeeded"
    assert result.provider_invoice_id == invoice
    assert result.provider_payment_id in fake_stripe.store.payment_intents
    assert fake_stripe.store.invoices[invoice]["status"] == "paid"


async def test_a_declined_invoice_stays_open(stripe_adapter: StripeAdapter, fake_stripe: FakeStripe) -> None:
    customer = await helpers.customer(stripe_adapter)
    fake_stripe.store.customers[customer]["invoice_settings"]["default_payment_method"] = INSUFFICIENT
    invoice = fake_stripe.store.open_invoice(customer, 4200)
    result = await stripe_adapter.charge(
        _charge(provider_invoice_id=invoice, provider_customer_id=customer), idempotency_key=helpers.key()
    )
    assert (result.status, result.failure_code, result.provider_invoice_id) == ("failed", "insufficient_funds", invoice)
    assert fake_stripe.store.invoices[invoice]["status"] == "open"


async def _paid(adapter: StripeAdapter) -> str:
    result = await adapter.charge(_charge(payment_method=resources.SUCCEEDS), idempotency_key=helpers.key())
    return result.provider_payment_id


async def test_partial_then_full_refund(stripe_adapter: StripeAdapter, fake_stripe: FakeStripe) -> None:
    payment = await _paid(stripe_adapter)
    partial = await stripe_adapter.refund(
        RefundRequest(refund_id=4, provider_payment_id=payment, amount=1000, currency="EUR", reason="duplicate"),
        idempotency_key=helpers.key(),
    )
    assert fake_stripe.last("POST", "/v1/refunds").params == {
        "payment_intent": payment,
        "amount": "1000",
        "reason": "duplicate",
        "metadata": {"billplane_refund_id": "4", **helpers.TENANT_METADATA},
    }
    assert (partial.status, partial.amount, partial.currency, partial.provider_payment_id) == (
        "succeeded",
        1000,
        "EUR",
        payment,
    )
    rest = await stripe_adapter.refund(
        RefundRequest(refund_id=5, provider_payment_id=payment, amount=3200, currency="EUR", reason="went elsewhere"),
        idempotency_key=helpers.key(),
    )
    assert rest.status == "succeeded"
    assert fake_stripe.last("POST", "/v1/refunds").params["metadata"] == {
        "billplane_refund_id": "5",
        "billplane_reason": "went elsewhere",
        **helpers.TENANT_METADATA,
    }


async def test_never_more_than_was_paid(stripe_adapter: StripeAdapter, fake_stripe: FakeStripe) -> None:
    payment = await _paid(stripe_adapter)
    with pytest.raises(ProviderError) as caught:
        await stripe_adapter.refund(
            RefundRequest(refund_id=6, provider_payment_id=payment, amount=4201, currency="EUR"),
            idempotency_key=helpers.key(),
        )
    assert caught.value.code == "amount_too_large"
    assert not fake_stripe.store.refunds


async def test_a_charge_id_is_refunded_as_a_charge(stripe_adapter: StripeAdapter, fake_stripe: FakeStripe) -> None:
    payment = await _paid(stripe_adapter)
    charge = fake_stripe.store.payment_intents[payment]["latest_charge"]
    refunded = await stripe_adapter.refund(
        RefundRequest(refund_id=7, provider_payment_id=charge, amount=100, currency="EUR"),
        idempotency_key=helpers.key(),
    )
    sent = fake_stripe.last("POST", "/v1/refunds").params
    assert (sent["charge"], "payment_intent" in sent) == (charge, False)
    assert (refunded.status, refunded.provider_payment_id) == ("succeeded", payment)  # Stripe names the intent
