"""Payment methods: a token Stripe.js made, attached to the Stripe customer for off-session charges."""

from __future__ import annotations

from typing import Any

import pytest
import stripe
from billplane_stripe import payment_methods
from billplane_stripe.adapter import StripeAdapter
from billplane_stripe.client import build_client
from billplane_stripe.plugin import PLUGIN

from billplane.plugins import (
    Capability,
    ChargeRequest,
    PaymentMethodAdapter,
    ProviderError,
    ProviderPaymentMethod,
    RetryableProviderError,
)
from tests.providers.stripe import helpers
from tests.providers.stripe.conftest import SECRET_KEY, MakeAdapter
from tests.providers.stripe.fake_stripe import resources
from tests.providers.stripe.fake_stripe.server import FakeStripe, Recorded

pytestmark = pytest.mark.anyio
VISA = resources.SUCCEEDS
MASTERCARD = resources.MASTERCARD
RETRIEVE = "/v1/payment_methods/{payment_method}"
ATTACH = "/v1/payment_methods/{payment_method}/attach"


def _attaches(fake: FakeStripe) -> list[Recorded]:
    return [r for r in fake.requests if r.method == "POST" and r.template == ATTACH]


def test_stripe_declares_payment_methods(stripe_adapter: StripeAdapter) -> None:
    adapter: PaymentMethodAdapter = stripe_adapter  # mypy checks the adapter against the protocol
    assert callable(adapter.attach_payment_method)
    assert callable(adapter.detach_payment_method)
    assert isinstance(stripe_adapter, PaymentMethodAdapter)
    assert Capability.PAYMENT_METHODS in PLUGIN.capabilities


@pytest.mark.parametrize(
    ("token", "brand", "last4"),
    [(VISA, "visa", "4242"), ("pm_card_mastercard", "mastercard", "4444"), ("pm_card_chargeDeclined", "visa", "0002")],
)
async def test_a_test_card_is_attached_to_the_customer(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe, token: str, brand: str, last4: str
) -> None:
    customer = await helpers.customer(stripe_adapter)
    key = helpers.key()

    method = await stripe_adapter.attach_payment_method(token, customer, idempotency_key=key)

    assert method == ProviderPaymentMethod(
        provider_payment_method_id=token, type="card", brand=brand, last4=last4, exp_month=12, exp_year=2034
    )
    assert fake_stripe.store.payment_methods[token]["customer"] == customer
    attach = fake_stripe.last("POST", ATTACH)
    assert (attach.path, attach.params, attach.idempotency_key) == (
        f"/v1/payment_methods/{token}/attach",
        {"customer": customer},
        key,
    )
    assert fake_stripe.last("GET", RETRIEVE).path == f"/v1/payment_methods/{token}"


async def test_a_bank_account_has_its_last4_and_no_card_details(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    customer = await helpers.customer(stripe_adapter)
    method = await stripe_adapter.attach_payment_method(resources.PROCESSING, customer, idempotency_key=helpers.key())
    assert method == ProviderPaymentMethod(
        provider_payment_method_id=resources.PROCESSING, type="us_bank_account", brand=None, last4="6789"
    )
    assert fake_stripe.store.payment_methods[resources.PROCESSING]["customer"] == customer


@pytest.mark.parametrize("second_key", ["same", "new"])
async def test_attaching_again_to_the_same_customer_is_no_error_and_no_second_attach(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe, second_key: str
) -> None:
    customer = await helpers.customer(stripe_adapter)
    key = helpers.key()
    first = await stripe_adapter.attach_payment_method(VISA, customer, idempotency_key=key)

    again = await stripe_adapter.attach_payment_method(
        VISA, customer, idempotency_key=key if second_key == "same" else helpers.key()
    )

    assert again == first
    assert len(_attaches(fake_stripe)) == 1
    assert fake_stripe.store.payment_methods[VISA]["customer"] == customer


async def test_a_method_of_another_customer_is_refused_and_stays_with_it(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    owner = await helpers.customer(stripe_adapter)
    other = await helpers.customer(stripe_adapter)
    await stripe_adapter.attach_payment_method(VISA, owner, idempotency_key=helpers.key())

    with pytest.raises(ProviderError) as caught:
        await stripe_adapter.attach_payment_method(VISA, other, idempotency_key=helpers.key())

    assert not isinstance(caught.value, RetryableProviderError)
    assert caught.value.code == "payment_method_of_another_customer"
    assert VISA in caught.value.message
    assert owner not in caught.value.message  # one Stripe account may serve several tenants
    assert len(_attaches(fake_stripe)) == 1
    assert fake_stripe.store.payment_methods[VISA]["customer"] == owner


async def test_an_unknown_token_is_refused_not_retried(stripe_adapter: StripeAdapter, fake_stripe: FakeStripe) -> None:
    customer = await helpers.customer(stripe_adapter)
    with pytest.raises(ProviderError) as caught:
        await stripe_adapter.attach_payment_method("pm_unknown_token", customer, idempotency_key=helpers.key())
    assert not isinstance(caught.value, RetryableProviderError)
    assert caught.value.code == "resource_missing"
    assert "pm_unknown_token" in caught.value.message
    assert "this Stripe account" in caught.value.message
    assert not _attaches(fake_stripe)


async def test_a_customer_not_at_stripe_is_refused_before_any_call(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    with pytest.raises(ProviderError) as caught:
        await stripe_adapter.attach_payment_method(VISA, None, idempotency_key=helpers.key())
    assert not isinstance(caught.value, RetryableProviderError)
    assert caught.value.code == "customer_not_synced"
    assert not fake_stripe.requests


async def test_an_empty_token_is_refused_before_any_call(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    customer = await helpers.customer(stripe_adapter)
    fake_stripe.requests.clear()
    with pytest.raises(ProviderError) as caught:
        await stripe_adapter.attach_payment_method(" ", customer, idempotency_key=helpers.key())
    assert not isinstance(caught.value, RetryableProviderError)
    assert not fake_stripe.requests


async def test_a_5xx_on_the_retrieve_is_retryable_and_attaches_nothing(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    customer = await helpers.customer(stripe_adapter)
    fake_stripe.fail_next(500, path="/v1/payment_methods/")
    with pytest.raises(RetryableProviderError):
        await stripe_adapter.attach_payment_method(VISA, customer, idempotency_key=helpers.key())
    assert fake_stripe.last("GET", RETRIEVE).status == 500
    assert not _attaches(fake_stripe)


async def test_a_5xx_on_the_attach_is_retryable_and_the_retry_attaches(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    customer = await helpers.customer(stripe_adapter)
    key = helpers.key()
    fake_stripe.fail_next(503, path=f"/v1/payment_methods/{VISA}/attach")
    with pytest.raises(RetryableProviderError):
        await stripe_adapter.attach_payment_method(VISA, customer, idempotency_key=key)
    assert fake_stripe.store.payment_methods[VISA]["customer"] is None

    method = await stripe_adapter.attach_payment_method(VISA, customer, idempotency_key=key)

    assert method.provider_payment_method_id == VISA
    assert fake_stripe.store.payment_methods[VISA]["customer"] == customer


async def test_stripe_unreachable_is_retryable() -> None:
    with pytest.raises(RetryableProviderError):
        await helpers.unreachable(SECRET_KEY).attach_payment_method(VISA, "cus_x", idempotency_key=helpers.key())


async def test_an_attached_method_is_charged_as_before(stripe_adapter: StripeAdapter, fake_stripe: FakeStripe) -> None:
    customer = await helpers.customer(stripe_adapter)
    method = await stripe_adapter.attach_payment_method("pm_card_mastercard", customer, idempotency_key=helpers.key())
    request = ChargeRequest(
        payment_id=41,
        amount=4200,
        currency="EUR",
        payment_method=method.provider_payment_method_id,
        provider_customer_id=customer,
    )
    result = await stripe_adapter.charge(request, idempotency_key=helpers.key())
    assert result.status == "succeeded"
    assert fake_stripe.last("POST", "/v1/payment_intents").params["payment_method"] == "pm_card_mastercard"


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (
            {
                "id": "pm_1",
                "type": "card",
                "card": {"brand": "amex", "last4": "8431", "exp_month": 3, "exp_year": 2031},
            },
            ProviderPaymentMethod(
                provider_payment_method_id="pm_1", type="card", brand="amex", last4="8431", exp_month=3, exp_year=2031
            ),
        ),
        (
            {"id": "pm_2", "type": "sepa_debit", "sepa_debit": {"last4": "3000", "bank_code": "37040044"}},
            ProviderPaymentMethod(provider_payment_method_id="pm_2", type="sepa_debit", last4="3000"),
        ),
        (
            {"id": "pm_3", "type": "link", "link": {"email": "grace@example.com"}},
            ProviderPaymentMethod(provider_payment_method_id="pm_3", type="link"),
        ),
        (
            {"id": "pm_4", "type": "card", "card": None},
            ProviderPaymentMethod(provider_payment_method_id="pm_4", type="card"),
        ),
    ],
    ids=["card", "sepa_debit", "link", "card_without_details"],
)
def test_a_payment_method_is_read_without_anything_secret(
    obj: dict[str, object], expected: ProviderPaymentMethod
) -> None:
    assert payment_methods.to_provider(obj) == expected


async def test_the_fake_moves_no_method_between_customers_and_knows_no_other_ids(fake_stripe: FakeStripe) -> None:
    # What the adapter is spared by retrieving first, as Stripe answers it.
    client = build_client(SECRET_KEY, {"api_base": fake_stripe.url})
    owner = await client.v1.customers.create_async()
    other = await client.v1.customers.create_async()
    await client.v1.payment_methods.attach_async(VISA, {"customer": owner.id})
    await client.v1.payment_methods.attach_async(VISA, {"customer": owner.id})  # the same customer: as it is

    with pytest.raises(stripe.InvalidRequestError) as moved:
        await client.v1.payment_methods.attach_async(VISA, {"customer": other.id})
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        await client.v1.payment_methods.retrieve_async("pm_card_nonesuch")

    assert (moved.value.http_status, fake_stripe.store.payment_methods[VISA]["customer"]) == (400, owner.id)
    assert (unknown.value.http_status, unknown.value.code) == (404, "resource_missing")


async def test_as_default_it_is_the_stripe_customers_default_too(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    # Stripe pays the invoices it issues (the subscriptions it bills) with its own default.
    customer = await helpers.customer(stripe_adapter)
    key = helpers.key()

    await stripe_adapter.attach_payment_method(VISA, customer, idempotency_key=key, default=True)

    assert fake_stripe.store.customers[customer]["invoice_settings"]["default_payment_method"] == VISA
    update = fake_stripe.last("POST", "/v1/customers/{customer}")
    # Its key names the default it replaces: made the default again after another, it is set again.
    assert (update.params, update.idempotency_key) == (
        {"invoice_settings": {"default_payment_method": VISA}},
        f"{key}:default-after-none",
    )
    updates = len(fake_stripe.requests)
    await stripe_adapter.attach_payment_method(VISA, customer, idempotency_key=key, default=True)  # a retry
    assert [r.method for r in fake_stripe.requests[updates:]] == ["GET", "GET"]  # nothing to set again
    await stripe_adapter.attach_payment_method(
        "pm_card_chargeDeclined", customer, idempotency_key=helpers.key(), default=True
    )
    await stripe_adapter.attach_payment_method(VISA, customer, idempotency_key=key, default=True)
    assert fake_stripe.store.customers[customer]["invoice_settings"]["default_payment_method"] == VISA
    again = fake_stripe.last("POST", "/v1/customers/{customer}")
    assert again.idempotency_key == f"{key}:default-after-pm_card_chargeDeclined"
    other = await helpers.customer(stripe_adapter)
    await stripe_adapter.attach_payment_method("pm_card_mastercard", other, idempotency_key=helpers.key())
    assert fake_stripe.store.customers[other]["invoice_settings"].get("default_payment_method") is None


# -- detach ----------------------------------------------------------------------------------

DETACH = "/v1/payment_methods/{payment_method}/detach"
CUSTOMER = "/v1/customers/{customer}"


def _detaches(fake: FakeStripe) -> list[Recorded]:
    return [r for r in fake.requests if r.method == "POST" and r.template == DETACH]


def _customer_updates(fake: FakeStripe) -> list[Recorded]:
    return [r for r in fake.requests if r.method == "POST" and r.template == CUSTOMER]


async def test_an_attached_method_is_detached(stripe_adapter: StripeAdapter, fake_stripe: FakeStripe) -> None:
    customer = await helpers.customer(stripe_adapter)
    await stripe_adapter.attach_payment_method(VISA, customer, idempotency_key=helpers.key())
    key = helpers.key()

    await stripe_adapter.detach_payment_method(VISA, customer, idempotency_key=key)

    assert fake_stripe.store.payment_methods[VISA]["customer"] is None
    (detach,) = _detaches(fake_stripe)
    assert (detach.path, detach.params, detach.idempotency_key) == (f"/v1/payment_methods/{VISA}/detach", {}, key)
    assert not _customer_updates(fake_stripe)  # it was not the default: the customer is left alone


@pytest.mark.parametrize("second_key", ["same", "new"])
async def test_detaching_again_is_no_error_and_no_second_detach(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe, second_key: str
) -> None:
    customer = await helpers.customer(stripe_adapter)
    await stripe_adapter.attach_payment_method(VISA, customer, idempotency_key=helpers.key())
    key = helpers.key()
    await stripe_adapter.detach_payment_method(VISA, customer, idempotency_key=key)

    await stripe_adapter.detach_payment_method(
        VISA, customer, idempotency_key=key if second_key == "same" else helpers.key()
    )

    assert len(_detaches(fake_stripe)) == 1  # Stripe would refuse to detach it twice
    assert fake_stripe.store.payment_methods[VISA]["customer"] is None


async def test_a_method_of_another_customer_is_left_attached(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    owner = await helpers.customer(stripe_adapter)
    other = await helpers.customer(stripe_adapter)
    await stripe_adapter.attach_payment_method(VISA, owner, idempotency_key=helpers.key(), default=True)

    await stripe_adapter.detach_payment_method(VISA, other, idempotency_key=helpers.key())

    assert not _detaches(fake_stripe)
    assert fake_stripe.store.payment_methods[VISA]["customer"] == owner
    assert fake_stripe.store.customers[owner]["invoice_settings"]["default_payment_method"] == VISA


@pytest.mark.parametrize("customer", ["at_stripe", "not_at_stripe"])
async def test_an_unknown_method_is_no_error(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe, customer: str
) -> None:
    customer_id = await helpers.customer(stripe_adapter) if customer == "at_stripe" else None
    await stripe_adapter.detach_payment_method("pm_unknown_method", customer_id, idempotency_key=helpers.key())
    assert not _detaches(fake_stripe)


async def test_an_empty_id_is_refused_before_any_call(stripe_adapter: StripeAdapter, fake_stripe: FakeStripe) -> None:
    with pytest.raises(ProviderError) as caught:
        await stripe_adapter.detach_payment_method(" ", "cus_x", idempotency_key=helpers.key())
    assert not isinstance(caught.value, RetryableProviderError)
    assert caught.value.code == "payment_method_required"
    assert not fake_stripe.requests


async def test_a_revoked_key_is_refused_not_retried(make_adapter: MakeAdapter, fake_stripe: FakeStripe) -> None:
    connected = make_adapter()
    customer = await helpers.customer(connected)
    await connected.attach_payment_method(VISA, customer, idempotency_key=helpers.key())
    revoked = make_adapter(secret_key="sk_test_revoked_0000000000000000")

    with pytest.raises(ProviderError) as caught:
        await revoked.detach_payment_method(VISA, customer, idempotency_key=helpers.key())

    assert not isinstance(caught.value, RetryableProviderError)
    assert caught.value.code == "authentication_failed"
    assert "sk_test_revoked" not in caught.value.message
    assert fake_stripe.store.payment_methods[VISA]["customer"] == customer


@pytest.mark.parametrize("stripe", ["keeps_the_default", "clears_the_default"])
async def test_the_customers_default_is_cleared(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe, stripe: str
) -> None:
    # Stripe's own invoices (the subscriptions it bills) charge this default: it must not name a
    # method billplane removed. Stripe's reference does not say whether a detach clears it.
    stripe_clears = stripe == "clears_the_default"
    fake_stripe.store.detach_clears_default = stripe_clears
    customer = await helpers.customer(stripe_adapter)
    await stripe_adapter.attach_payment_method(VISA, customer, idempotency_key=helpers.key(), default=True)
    fake_stripe.requests.clear()
    key = helpers.key()

    await stripe_adapter.detach_payment_method(VISA, customer, idempotency_key=key)

    assert fake_stripe.store.customers[customer]["invoice_settings"]["default_payment_method"] is None
    assert fake_stripe.store.payment_methods[VISA]["customer"] is None
    clears = [(r.params, r.idempotency_key) for r in _customer_updates(fake_stripe)]
    expected = {"invoice_settings": {"default_payment_method": ""}}
    assert clears == ([] if stripe_clears else [(expected, f"{key}:default")])


async def test_another_default_is_left_as_it_is(stripe_adapter: StripeAdapter, fake_stripe: FakeStripe) -> None:
    customer = await helpers.customer(stripe_adapter)
    await stripe_adapter.attach_payment_method(VISA, customer, idempotency_key=helpers.key())
    await stripe_adapter.attach_payment_method(MASTERCARD, customer, idempotency_key=helpers.key(), default=True)
    fake_stripe.requests.clear()

    await stripe_adapter.detach_payment_method(VISA, customer, idempotency_key=helpers.key())

    assert fake_stripe.store.customers[customer]["invoice_settings"]["default_payment_method"] == MASTERCARD
    assert not _customer_updates(fake_stripe)


async def test_a_5xx_after_the_detach_is_retryable_and_the_retry_clears_the_default(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    customer = await helpers.customer(stripe_adapter)
    await stripe_adapter.attach_payment_method(VISA, customer, idempotency_key=helpers.key(), default=True)
    key = helpers.key()
    fake_stripe.fail_next(500, path=f"/v1/customers/{customer}")
    with pytest.raises(RetryableProviderError):
        await stripe_adapter.detach_payment_method(VISA, customer, idempotency_key=key)
    assert fake_stripe.store.payment_methods[VISA]["customer"] is None  # detached, the default not cleared yet
    assert fake_stripe.store.customers[customer]["invoice_settings"]["default_payment_method"] == VISA

    await stripe_adapter.detach_payment_method(VISA, customer, idempotency_key=key)

    assert fake_stripe.store.customers[customer]["invoice_settings"]["default_payment_method"] is None
    assert len(_detaches(fake_stripe)) == 1


async def test_a_5xx_on_the_detach_is_retryable_and_the_retry_detaches(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    customer = await helpers.customer(stripe_adapter)
    await stripe_adapter.attach_payment_method(VISA, customer, idempotency_key=helpers.key())
    key = helpers.key()
    fake_stripe.fail_next(503, path=f"/v1/payment_methods/{VISA}/detach")
    with pytest.raises(RetryableProviderError):
        await stripe_adapter.detach_payment_method(VISA, customer, idempotency_key=key)
    assert fake_stripe.store.payment_methods[VISA]["customer"] == customer

    await stripe_adapter.detach_payment_method(VISA, customer, idempotency_key=key)

    assert fake_stripe.store.payment_methods[VISA]["customer"] is None


async def test_stripe_unreachable_is_retryable_on_detach() -> None:
    with pytest.raises(RetryableProviderError):
        await helpers.unreachable(SECRET_KEY).detach_payment_method(VISA, "cus_x", idempotency_key=helpers.key())


async def test_the_fake_detaches_once_and_never_reuses_a_detached_method(fake_stripe: FakeStripe) -> None:
    # What the adapter is spared by retrieving first, as Stripe answers it.
    client = build_client(SECRET_KEY, {"api_base": fake_stripe.url})
    customer = await client.v1.customers.create_async()
    await client.v1.payment_methods.attach_async(VISA, {"customer": customer.id})
    detached = await client.v1.payment_methods.detach_async(VISA)
    assert detached.customer is None

    with pytest.raises(stripe.InvalidRequestError) as again:
        await client.v1.payment_methods.detach_async(VISA)
    with pytest.raises(stripe.InvalidRequestError) as reattached:
        await client.v1.payment_methods.attach_async(VISA, {"customer": customer.id})
    params: Any = {"amount": 500, "currency": "eur", "payment_method": VISA, "confirm": True}
    with pytest.raises(stripe.InvalidRequestError) as charged:
        await client.v1.payment_intents.create_async(params)

    assert [error.value.http_status for error in (again, reattached, charged)] == [400, 400, 400]
    assert "not attached" in str(again.value.user_message)
    assert "may not be used again" in str(reattached.value.user_message)
