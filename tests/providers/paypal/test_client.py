"""OAuth2 tokens, PayPal-Request-Id, base URLs and PayPal's errors as billplane's error types."""

from __future__ import annotations

import asyncio
import socket

import pytest
from billplane_paypal import tokens
from billplane_paypal.client import PayPalClient
from billplane_paypal.credentials import LIVE_API, SANDBOX_API, PayPalCredentials, api_base
from billplane_paypal.events import EVENT_TYPES, OPTIONAL_EVENT_TYPES

from billplane.plugins import (
    CustomerData,
    InvalidCredentialsError,
    ProductData,
    ProviderError,
    RetryableProviderError,
    SubscriptionChange,
    SubscriptionData,
)
from billplane.testing import samples
from tests.providers.paypal.conftest import WEBHOOK_ID, MakeAdapter, new_client_id
from tests.providers.paypal.fake_paypal import GOOD_SECRET, FakePayPal


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(tokens.TOKENS, "clock", fake)
    return fake


def test_mode_picks_the_base_url_and_the_operator_option_overrides_it() -> None:
    assert api_base("test", {}) == SANDBOX_API == "https://api-m.sandbox.paypal.com"
    assert api_base("live", {}) == LIVE_API == "https://api-m.paypal.com"
    assert api_base("live", {"api_base": "http://127.0.0.1:9"}) == "http://127.0.0.1:9"


def test_the_secret_never_shows_in_a_repr(make_adapter: MakeAdapter) -> None:
    credentials = PayPalCredentials(client_id="AZ-id", client_secret="super-secret-value", webhook_id="WH")
    assert "super-secret-value" not in repr(credentials)
    assert "super-secret-value" not in repr(make_adapter(client_secret="super-secret-value"))


async def test_every_post_carries_a_paypal_request_id(make_adapter: MakeAdapter, paypal: FakePayPal) -> None:
    paypal.auto_approve = True
    adapter = make_adapter()
    start = len(paypal.log)
    customer = await adapter.ensure_customer(samples.customer(), idempotency_key="k-customer")
    product = await adapter.ensure_product(samples.product(), idempotency_key="k-product")
    price = await adapter.ensure_price(samples.price("per_seat", product.provider_id, "USD"), idempotency_key="k-price")
    data = SubscriptionData(
        subscription_id=5, provider_customer_id=customer.provider_id, provider_price_id=price.provider_id
    )
    sub = await adapter.create_subscription(data, idempotency_key="k-create")
    await adapter.update_subscription(sub.provider_id, SubscriptionChange(quantity=4), idempotency_key="k-revise")
    await adapter.pause_subscription(sub.provider_id, idempotency_key="k-pause")
    await adapter.resume_subscription(sub.provider_id, idempotency_key="k-resume")
    charge = await adapter.charge(samples.charge(sub.provider_id, "USD"), idempotency_key="k-charge")
    await adapter.refund(samples.refund(charge.provider_payment_id, "USD"), idempotency_key="k-refund")
    await adapter.cancel_subscription(sub.provider_id, at_period_end=False, idempotency_key="k-cancel")
    posts = [entry for entry in paypal.log[start:] if entry.method == "POST" and entry.path != "/v1/oauth2/token"]
    assert [entry.headers.get("paypal-request-id") for entry in posts] == [
        # A create carries one id per billplane subscription (5 of tenant 1), whichever row sends it.
        "k-product", "k-price", "billplane-1-subscription-5", "k-revise", "k-pause", "k-resume", "k-charge",
        "k-refund", "k-cancel",
    ]  # fmt: skip
    assert all(entry.headers.get("prefer") == "return=representation" for entry in posts)


async def test_the_same_request_id_returns_the_first_object(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter()
    first = await adapter.ensure_product(ProductData(product_id=1, name="A"), idempotency_key="same")
    again = await adapter.ensure_product(ProductData(product_id=1, name="A"), idempotency_key="same")
    other = await adapter.ensure_product(ProductData(product_id=1, name="A"), idempotency_key="other")
    assert first == again != other


async def test_a_request_id_is_replayed_only_where_paypals_spec_declares_it(paypal: FakePayPal) -> None:
    """The spec declares PayPal-Request-Id for creating products, plans and subscriptions, for a
    subscription's capture and for a capture's refund; suspend, activate, revise and cancel accept it
    (a common header) but promise no replay, so the fake must not replay them either."""
    credentials = PayPalCredentials(client_id=new_client_id(), client_secret=GOOD_SECRET, webhook_id=WEBHOOK_ID)
    client = PayPalClient(paypal.base_url, credentials)
    product = {"name": "replayed", "type": "SERVICE"}
    first = await client.call("POST", "/v1/catalogs/products", request_id="replay-product", body=product)
    assert await client.call("POST", "/v1/catalogs/products", request_id="replay-product", body=product) == first
    suspend = f"/v1/billing/subscriptions/{paypal.seed_active_subscription()}/suspend"
    await client.call("POST", suspend, request_id="replay-suspend", body={"reason": "first"})
    with pytest.raises(ProviderError) as refused:
        await client.call("POST", suspend, request_id="replay-suspend", body={"reason": "first"})
    assert refused.value.code == "SUBSCRIPTION_STATUS_INVALID"


async def test_concurrent_calls_fetch_one_token(make_adapter: MakeAdapter, paypal: FakePayPal) -> None:
    client_id = new_client_id()
    adapters = [make_adapter(client_id=client_id) for _ in range(20)]  # billplane builds one per call
    products = await asyncio.gather(
        *(a.ensure_product(samples.product(), idempotency_key=f"c-{i}") for i, a in enumerate(adapters))
    )
    assert len({p.provider_id for p in products}) == 20
    assert paypal.token_fetches[client_id] == 1


async def test_a_token_is_refreshed_shortly_before_it_expires(
    make_adapter: MakeAdapter, paypal: FakePayPal, clock: Clock
) -> None:
    client_id = new_client_id()
    paypal.token_expires_in = 3600
    await make_adapter(client_id=client_id).ensure_product(samples.product(), idempotency_key="r1")
    clock.now += 3600 - tokens.REFRESH_MARGIN - 1  # still inside its life minus the margin
    await make_adapter(client_id=client_id).ensure_product(samples.product(), idempotency_key="r2")
    assert paypal.token_fetches[client_id] == 1
    clock.now += 2  # within the margin: replaced before PayPal would refuse it
    await asyncio.gather(
        *(
            make_adapter(client_id=client_id).ensure_product(samples.product(), idempotency_key=f"r3-{i}")
            for i in range(5)
        )
    )
    assert paypal.token_fetches[client_id] == 2


async def test_a_refused_token_is_replaced_once_and_the_call_retried(
    make_adapter: MakeAdapter, paypal: FakePayPal
) -> None:
    client_id = new_client_id()
    await make_adapter(client_id=client_id).ensure_product(samples.product(), idempotency_key="t1")
    paypal.revoke_tokens()
    product = await make_adapter(client_id=client_id).ensure_product(samples.product(), idempotency_key="t2")
    assert product.provider_id in paypal.products
    assert paypal.token_fetches[client_id] == 2


async def test_tokens_are_not_shared_between_different_secrets(make_adapter: MakeAdapter, paypal: FakePayPal) -> None:
    client_id = new_client_id()
    await make_adapter(client_id=client_id).check_credentials()
    with pytest.raises(InvalidCredentialsError):
        # The same client id with a wrong secret must not ride on the cached token.
        await make_adapter(client_id=client_id, client_secret="guessed").ensure_product(
            samples.product(), idempotency_key="x"
        )


async def test_a_wrong_secret_fails_the_check_with_paypals_message(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter(client_secret="wrong-secret-1234")
    with pytest.raises(InvalidCredentialsError) as caught:
        await adapter.check_credentials()
    assert "Client Authentication failed" in caught.value.message
    assert caught.value.code == "invalid_client"
    assert "wrong-secret-1234" not in str(caught.value)


async def test_429_is_retryable_with_retry_after(make_adapter: MakeAdapter, paypal: FakePayPal) -> None:
    paypal.fail_next("/v1/catalogs/products", 429, retry_after="7")
    with pytest.raises(RetryableProviderError) as caught:
        await make_adapter().ensure_product(samples.product(), idempotency_key="429")
    assert caught.value.retry_after == 7.0


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_is_retryable(make_adapter: MakeAdapter, paypal: FakePayPal, status: int) -> None:
    paypal.fail_next("/v1/catalogs/products", status)
    with pytest.raises(RetryableProviderError) as caught:
        await make_adapter().ensure_product(samples.product(), idempotency_key=f"5xx-{status}")
    assert caught.value.retry_after is None


async def test_a_failing_token_endpoint_is_retryable(make_adapter: MakeAdapter, paypal: FakePayPal) -> None:
    paypal.fail_next("/v1/oauth2/token", 503)
    with pytest.raises(RetryableProviderError):
        await make_adapter().check_credentials()


async def test_a_timeout_is_retryable(make_adapter: MakeAdapter, paypal: FakePayPal) -> None:
    paypal.fail_next("/v1/catalogs/products", None, delay=0.5)
    with pytest.raises(RetryableProviderError, match="did not answer"):
        await make_adapter(options={"timeout": "0.1"}).ensure_product(samples.product(), idempotency_key="slow")


async def test_an_unreachable_paypal_is_retryable(make_adapter: MakeAdapter) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    adapter = make_adapter(options={"api_base": f"http://127.0.0.1:{port}"})
    with pytest.raises(RetryableProviderError, match="unreachable"):
        await adapter.ensure_product(samples.product(), idempotency_key="down")


async def test_a_refusal_carries_paypals_name_message_and_issue(make_adapter: MakeAdapter) -> None:
    with pytest.raises(ProviderError) as caught:
        await make_adapter().pause_subscription("I-DOESNOTEXIST", idempotency_key="nope")
    assert not isinstance(caught.value, RetryableProviderError)
    assert caught.value.code == "INVALID_RESOURCE_ID"
    assert "does not exist" in caught.value.message


async def test_customers_are_local_references(make_adapter: MakeAdapter, paypal: FakePayPal) -> None:
    adapter = make_adapter()
    before = len(paypal.log)
    customer = CustomerData(customer_id=12, email="a@example.com", name="A")
    first = await adapter.ensure_customer(customer, idempotency_key="cus-1")
    assert first == await adapter.ensure_customer(customer, idempotency_key="cus-1")
    assert first != await adapter.ensure_customer(customer, idempotency_key="cus-2")
    assert first.provider_id.startswith("billplane-customer-12-")
    await adapter.update_customer(first.provider_id, customer, idempotency_key="cus-3")
    await adapter.delete_customer(first.provider_id, idempotency_key="cus-4")
    assert len(paypal.log) == before  # PayPal has no customer object: no call at all


async def test_a_webhook_id_paypal_does_not_know_fails_the_check(make_adapter: MakeAdapter) -> None:
    with pytest.raises(InvalidCredentialsError, match="no webhook 'WH-TYPO'") as caught:
        await make_adapter(webhook_id="WH-TYPO").check_credentials()
    assert caught.value.code == "INVALID_RESOURCE_ID"
    await make_adapter().check_credentials()  # the fixture's webhook id is known


async def test_a_webhook_not_subscribed_to_every_event_billplane_reads_fails_the_check(
    make_adapter: MakeAdapter, paypal: FakePayPal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paypal, "webhook_event_types", [])  # the fake serves other tests: put back after
    paypal.webhook_event_types = sorted(EVENT_TYPES - {"PAYMENT.SALE.COMPLETED", "PAYMENT.SALE.REFUNDED"})
    with pytest.raises(InvalidCredentialsError) as caught:
        await make_adapter().check_credentials()
    assert caught.value.code == "webhook_event_types"
    assert "not subscribed to PAYMENT.SALE.COMPLETED, PAYMENT.SALE.REFUNDED:" in caught.value.message
    paypal.webhook_event_types = [*sorted(EVENT_TYPES), "CHECKOUT.ORDER.APPROVED"]  # every one, and more
    await make_adapter().check_credentials()
    paypal.webhook_event_types = sorted(EVENT_TYPES - OPTIONAL_EVENT_TYPES)
    await make_adapter().check_credentials()


async def test_an_unreachable_paypal_during_the_check_is_retryable(
    make_adapter: MakeAdapter, paypal: FakePayPal
) -> None:
    paypal.fail_next("/v1/notifications/webhooks/", 503)
    with pytest.raises(RetryableProviderError):
        await make_adapter().check_credentials()
