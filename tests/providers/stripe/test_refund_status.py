"""refund_status: a refund read by its id (GET /v1/refunds/{id}) as it stands now, the way its
webhooks report it; None for a refund Stripe does not have; retryable when Stripe cannot be reached."""

from __future__ import annotations

import pytest
from billplane_stripe.adapter import StripeAdapter

from billplane.plugins import ChargeRequest, RefundRequest, RefundResult, RetryableProviderError
from tests.providers.stripe import helpers
from tests.providers.stripe.conftest import SECRET_KEY
from tests.providers.stripe.fake_stripe import refunds, resources
from tests.providers.stripe.fake_stripe.server import FakeStripe

pytestmark = pytest.mark.anyio


async def _refund(adapter: StripeAdapter, method: str, *, refund_id: int = 4, amount: int = 1000) -> RefundResult:
    """A refund of part of a 42.00 EUR payment made with ``method``."""
    payment = await adapter.charge(
        ChargeRequest(payment_id=31, amount=4200, currency="EUR", payment_method=method), idempotency_key=helpers.key()
    )
    request = RefundRequest(
        refund_id=refund_id, provider_payment_id=payment.provider_payment_id, amount=amount, currency="EUR"
    )
    return await adapter.refund(request, idempotency_key=helpers.key())


async def _read(adapter: StripeAdapter, provider_refund_id: str) -> RefundResult:
    read = await adapter.refund_status(provider_refund_id)
    assert read is not None
    return read


async def test_a_succeeded_refund_reads_succeeded_with_what_it_refunded(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    made = await _refund(stripe_adapter, resources.SUCCEEDS, refund_id=4)
    payment_id = fake_stripe.store.refunds[made.provider_refund_id]["payment_intent"]

    read = await _read(stripe_adapter, made.provider_refund_id)

    assert read == RefundResult(
        provider_refund_id=made.provider_refund_id,
        status="succeeded",
        provider_payment_id=payment_id,
        amount=1000,
        currency="EUR",
        billplane_refund_id=4,
    )
    assert fake_stripe.requests[-1].method == "GET"
    assert fake_stripe.requests[-1].path == f"/v1/refunds/{made.provider_refund_id}"
    assert fake_stripe.requests[-1].template == "/v1/refunds/{refund}"


async def test_a_pending_refund_reads_pending_until_it_settles(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    made = await _refund(stripe_adapter, refunds.PENDING_REFUND)
    assert made.status == "pending"
    assert (await _read(stripe_adapter, made.provider_refund_id)).status == "pending"

    refunds.settle_refund(fake_stripe.store, made.provider_refund_id, "succeeded")

    settled = await _read(stripe_adapter, made.provider_refund_id)
    assert (settled.status, settled.failure_message, settled.amount) == ("succeeded", None, 1000)


async def test_a_pending_refund_that_fails_reads_failed_with_stripes_reason(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    made = await _refund(stripe_adapter, refunds.PENDING_REFUND)
    refunds.settle_refund(fake_stripe.store, made.provider_refund_id, "failed", failure_reason="lost_or_stolen_card")

    failed = await _read(stripe_adapter, made.provider_refund_id)
    assert (failed.status, failed.failure_message, failed.billplane_refund_id) == ("failed", "lost_or_stolen_card", 4)


async def test_a_refund_that_succeeded_and_then_failed_reads_failed(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    made = await _refund(stripe_adapter, refunds.REFUND_FAILS)
    assert made.status == "succeeded"  # as Stripe answers it at first
    refunds.settle_refund(fake_stripe.store, made.provider_refund_id, "failed")

    failed = await _read(stripe_adapter, made.provider_refund_id)
    assert (failed.status, failed.failure_message) == ("failed", "expired_or_canceled_card")
    # The amount is refundable again, so the tenant can refund it another way.
    again = await stripe_adapter.refund(
        RefundRequest(refund_id=5, provider_payment_id=str(failed.provider_payment_id), amount=4200, currency="EUR"),
        idempotency_key=helpers.key(),
    )
    assert again.status == "succeeded"


async def test_a_refund_waiting_for_the_customer_reads_pending_and_failed_once_canceled(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    made = await _refund(stripe_adapter, resources.SUCCEEDS)
    # Stripe's refunds to a bank transfer wait for the customer's account details (requires_action);
    # the fake has no such payment method, so the test puts the refund in that state itself.
    fake_stripe.store.refunds[made.provider_refund_id]["status"] = "requires_action"
    assert (await _read(stripe_adapter, made.provider_refund_id)).status == "pending"

    refunds.settle_refund(fake_stripe.store, made.provider_refund_id, "canceled")

    canceled = await _read(stripe_adapter, made.provider_refund_id)
    assert (canceled.status, canceled.failure_message) == ("failed", None)


async def test_a_refund_stripe_does_not_have_is_none(stripe_adapter: StripeAdapter, fake_stripe: FakeStripe) -> None:
    assert await stripe_adapter.refund_status("re_unknown") is None  # Stripe answers 404 resource_missing
    assert await stripe_adapter.refund_status("pyr_unknown") is None
    assert await stripe_adapter.refund_status("pi_not_a_refund") is None  # no refund behind it: nothing asked
    assert await stripe_adapter.refund_status("") is None
    assert [request.path for request in fake_stripe.requests] == ["/v1/refunds/re_unknown", "/v1/refunds/pyr_unknown"]
    assert [request.status for request in fake_stripe.requests] == [404, 404]


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_a_failing_stripe_is_retryable_not_none(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe, status: int
) -> None:
    made = await _refund(stripe_adapter, refunds.PENDING_REFUND)
    fake_stripe.fail_next(status, path="/v1/refunds/")
    with pytest.raises(RetryableProviderError):
        await stripe_adapter.refund_status(made.provider_refund_id)


async def test_an_unreachable_stripe_is_retryable() -> None:
    with pytest.raises(RetryableProviderError):
        await helpers.unreachable(SECRET_KEY).refund_status("re_123")
