"""find_payment: a charge whose answer was lost is found by listing PaymentIntents (never Search),
an invoice payment through its invoice, and a charge Stripe never received is certainly None."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from billplane_stripe.adapter import StripeAdapter

from billplane.plugins import ChargeRequest, RetryableProviderError
from tests.providers.stripe import helpers
from tests.providers.stripe.fake_stripe import resources
from tests.providers.stripe.fake_stripe.server import FakeStripe

pytestmark = pytest.mark.anyio
DECLINED = "pm_card_chargeDeclined"


def _since() -> datetime:
    return datetime.now(UTC) - timedelta(minutes=10)


def _charge(payment_id: int = 31, **fields: object) -> ChargeRequest:
    return ChargeRequest(payment_id=payment_id, amount=4200, currency="EUR", **fields)  # type: ignore[arg-type]


async def test_a_charge_whose_answer_was_lost_is_found_among_the_customers_payment_intents(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    customer = await helpers.customer(stripe_adapter)
    request = _charge(payment_method=resources.SUCCEEDS, provider_customer_id=customer)
    key = helpers.key()
    made = await stripe_adapter.charge(request, idempotency_key=key)  # the answer billplane never saw
    await stripe_adapter.charge(_charge(32, payment_method=resources.SUCCEEDS, provider_customer_id=customer),
                                idempotency_key=helpers.key())  # fmt: skip

    found = await stripe_adapter.find_payment(request, idempotency_key=key, created_after=_since())

    assert found is not None
    assert (found.provider_payment_id, found.status) == (made.provider_payment_id, "succeeded")
    listed = fake_stripe.last("GET", "/v1/payment_intents")
    assert listed.params["customer"] == customer
    assert int(listed.params["created"]["gte"]) <= int(datetime.now(UTC).timestamp()) - 500
    assert not [r for r in fake_stripe.requests if r.path.endswith("/search")]  # eventually consistent: never
    assert not fake_stripe.violations


async def test_a_declined_charge_is_found_failed_with_its_reason(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    customer = await helpers.customer(stripe_adapter)
    request = _charge(payment_method=DECLINED, provider_customer_id=customer)
    key = helpers.key()
    await stripe_adapter.charge(request, idempotency_key=key)
    found = await stripe_adapter.find_payment(request, idempotency_key=key, created_after=_since())
    assert found is not None
    assert (found.status, found.failure_code) == ("failed", "generic_decline")
    assert not fake_stripe.violations


async def test_a_charge_stripe_never_received_is_none(stripe_adapter: StripeAdapter, fake_stripe: FakeStripe) -> None:
    customer = await helpers.customer(stripe_adapter)
    other = _charge(33, payment_method=resources.SUCCEEDS, provider_customer_id=customer)
    await stripe_adapter.charge(other, idempotency_key=helpers.key())  # another payment of the same customer
    same_id_other_amount = ChargeRequest(
        payment_id=34, amount=1, currency="EUR", payment_method=resources.SUCCEEDS, provider_customer_id=customer
    )
    await stripe_adapter.charge(same_id_other_amount, idempotency_key=helpers.key())  # another tenant's payment 34
    never = _charge(34, payment_method=resources.SUCCEEDS, provider_customer_id=customer)
    assert await stripe_adapter.find_payment(never, idempotency_key=helpers.key(), created_after=_since()) is None
    assert not fake_stripe.violations


async def test_a_charge_older_than_created_after_is_not_searched(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    customer = await helpers.customer(stripe_adapter)
    request = _charge(35, payment_method=resources.SUCCEEDS, provider_customer_id=customer)
    key = helpers.key()
    await stripe_adapter.charge(request, idempotency_key=key)
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert await stripe_adapter.find_payment(request, idempotency_key=key, created_after=later) is None


async def test_without_a_customer_the_accounts_payment_intents_of_that_time_are_searched(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    customer = await helpers.customer(stripe_adapter)
    with_customer = _charge(36, payment_method=resources.SUCCEEDS, provider_customer_id=customer)
    await stripe_adapter.charge(with_customer, idempotency_key=helpers.key())
    request = _charge(36, payment_method=resources.SUCCEEDS)
    key = helpers.key()
    made = await stripe_adapter.charge(request, idempotency_key=key)
    found = await stripe_adapter.find_payment(request, idempotency_key=key, created_after=_since())
    assert found is not None
    assert found.provider_payment_id == made.provider_payment_id  # not the customer's payment 36
    assert "customer" not in fake_stripe.last("GET", "/v1/payment_intents").params
    assert not fake_stripe.violations


async def test_many_payment_intents_are_paged_through(stripe_adapter: StripeAdapter, fake_stripe: FakeStripe) -> None:
    customer = await helpers.customer(stripe_adapter)
    request = _charge(37, payment_method=resources.SUCCEEDS, provider_customer_id=customer)
    key = helpers.key()
    made = await stripe_adapter.charge(request, idempotency_key=key)
    for number in range(101):  # newer than the one sought: it is on the second page
        await stripe_adapter.charge(
            _charge(1000 + number, payment_method=resources.SUCCEEDS, provider_customer_id=customer),
            idempotency_key=helpers.key(),
        )
    found = await stripe_adapter.find_payment(request, idempotency_key=key, created_after=_since())
    assert found is not None
    assert found.provider_payment_id == made.provider_payment_id
    assert len([r for r in fake_stripe.requests if r.template == "/v1/payment_intents" and r.method == "GET"]) == 2
    assert not fake_stripe.violations


async def test_an_invoice_payment_is_found_through_its_invoice(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    customer = await helpers.customer(stripe_adapter)
    fake_stripe.store.customers[customer]["invoice_settings"]["default_payment_method"] = resources.SUCCEEDS
    paid = fake_stripe.store.open_invoice(customer, 4200, "eur")
    unpaid = fake_stripe.store.open_invoice(customer, 4200, "eur")
    request = _charge(38, provider_customer_id=customer, provider_invoice_id=paid)
    key = helpers.key()
    made = await stripe_adapter.charge(request, idempotency_key=key)

    found = await stripe_adapter.find_payment(request, idempotency_key=key, created_after=_since())
    assert found is not None
    assert (found.status, found.provider_payment_id, found.provider_invoice_id) == (
        "succeeded",
        made.provider_payment_id,
        paid,
    )
    assert fake_stripe.last("GET", "/v1/invoices/{invoice}").params == {"expand": ["payments"]}
    never = _charge(39, provider_customer_id=customer, provider_invoice_id=unpaid)
    assert await stripe_adapter.find_payment(never, idempotency_key=helpers.key(), created_after=_since()) is None
    assert not fake_stripe.violations


async def test_an_unreachable_stripe_is_retryable_not_none(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    fake_stripe.fail_next(503, path="/v1/payment_intents")
    with pytest.raises(RetryableProviderError):
        await stripe_adapter.find_payment(_charge(40), idempotency_key=helpers.key(), created_after=_since())


async def test_charge_status_reads_a_processing_payment_intent_until_it_clears(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    customer = await helpers.customer(stripe_adapter)
    cleared = await stripe_adapter.charge(
        _charge(payment_method=resources.PROCESSING, provider_customer_id=customer), idempotency_key=helpers.key()
    )
    bounced = await stripe_adapter.charge(
        _charge(33, payment_method=resources.PROCESSING, provider_customer_id=customer), idempotency_key=helpers.key()
    )
    assert (cleared.status, cleared.provider_payment_id[:3]) == ("pending", "pi_")

    still = await stripe_adapter.charge_status(cleared.provider_payment_id)
    assert still is not None
    assert still.status == "pending"
    assert fake_stripe.last("GET", "/v1/payment_intents/{intent}").path.endswith(cleared.provider_payment_id)

    resources.settle_processing(fake_stripe.store, cleared.provider_payment_id, succeeded=True)
    resources.settle_processing(fake_stripe.store, bounced.provider_payment_id, succeeded=False)
    succeeded = await stripe_adapter.charge_status(cleared.provider_payment_id)
    failed = await stripe_adapter.charge_status(bounced.provider_payment_id)
    assert succeeded is not None
    assert failed is not None
    assert (succeeded.status, succeeded.amount, succeeded.currency) == ("succeeded", 4200, "EUR")
    assert (failed.status, failed.failure_code) == ("failed", "payment_method_not_available")


async def test_charge_status_reads_an_invoice_payment_through_its_invoice(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    customer = await helpers.customer(stripe_adapter)
    fake_stripe.store.customers[customer]["invoice_settings"]["default_payment_method"] = resources.SUCCEEDS
    waiting, paid, voided = (fake_stripe.store.open_invoice(customer, 4200) for _ in range(3))
    await stripe_adapter.charge(
        _charge(provider_invoice_id=paid, provider_customer_id=customer), idempotency_key=helpers.key()
    )
    fake_stripe.store.invoices[voided]["status"] = "void"

    unattempted = await stripe_adapter.charge_status(waiting)
    settled = await stripe_adapter.charge_status(paid)
    assert unattempted is not None
    assert settled is not None
    assert (unattempted.status, settled.status) == ("pending", "succeeded")
    assert await stripe_adapter.charge_status(voided) is None  # nothing will be paid: for the tenant to settle


async def test_charge_status_of_unknown_ids_is_none(stripe_adapter: StripeAdapter, fake_stripe: FakeStripe) -> None:
    assert await stripe_adapter.charge_status("pi_unknown") is None  # Stripe answers 404
    assert await stripe_adapter.charge_status("in_unknown") is None
    assert await stripe_adapter.charge_status("declined:key-1") is None  # no object behind it: nothing asked
    asked = [request.path for request in fake_stripe.requests]
    assert asked == ["/v1/payment_intents/pi_unknown", "/v1/invoices/in_unknown"]
