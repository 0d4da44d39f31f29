"""Sandbox behaviour beyond the conformance kit: keys, ids, prices, subscriptions, payments, refunds."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import anyio
import msgspec
import pytest
from billplane_sandbox import payment_methods
from billplane_sandbox.credentials import SandboxCredentials
from billplane_sandbox.periods import current_period

from billplane.plugins import (
    ChargeRequest,
    CustomerData,
    InvalidCredentialsError,
    PaymentMethodAdapter,
    PriceData,
    ProductData,
    ProviderAdapter,
    ProviderError,
    RefundRequest,
    SubscriptionChange,
    SubscriptionData,
    TierData,
)
from billplane.plugins.contract import BillingInterval
from billplane.plugins.host import PluginHost
from tests.providers.sandbox.conftest import MakeAdapter

CUSTOMER = CustomerData(customer_id=7, email="ada@example.com", name="Ada")
OTHER_PROCESS = """
import asyncio
from billplane.plugins import CustomerData
from billplane.plugins.host import PluginHost
host = PluginHost.discover(["sandbox"], environ={})
adapter = host.adapter("sandbox", tenant_id=1, account_id=5, mode="test", credentials={"api_key": "sk_sandbox_x"})
customer = CustomerData(customer_id=1, email=None, name=None)
print(asyncio.run(adapter.ensure_customer(customer, idempotency_key="outbox-17")).provider_id)
"""


async def _price(adapter: ProviderAdapter, interval: BillingInterval = "month", count: int = 1) -> str:
    product = await adapter.ensure_product(ProductData(product_id=1, name="API"), idempotency_key="product")
    price = PriceData(
        plan_id=1,
        provider_product_id=product.provider_id,
        pricing_model="flat",
        currency="EUR",
        billing_interval=interval,
        interval_count=count,
        amount=900,
    )
    return (await adapter.ensure_price(price, idempotency_key=f"price-{interval}-{count}")).provider_id


async def _subscription(adapter: ProviderAdapter, price: str, *, trial_end: datetime | None = None) -> str:
    customer = (await adapter.ensure_customer(CUSTOMER, idempotency_key="customer")).provider_id
    data = SubscriptionData(
        subscription_id=3, provider_customer_id=customer, provider_price_id=price, trial_end=trial_end
    )
    return (await adapter.create_subscription(data, idempotency_key=f"sub-{price}-{trial_end}")).provider_id


@pytest.mark.parametrize("key", ["", "sk_sandbox_", "sk_live_4242abcd", "pk_sandbox_public"])
async def test_a_key_must_start_with_sk_sandbox(make_adapter: MakeAdapter, key: str) -> None:
    adapter = make_adapter(api_key=key)
    with pytest.raises(InvalidCredentialsError, match="sk_sandbox_") as caught:
        await adapter.check_credentials()
    assert not key.removeprefix("sk_sandbox_") or key not in str(caught.value)  # the key is never echoed
    with pytest.raises(InvalidCredentialsError):  # every call is refused, as at a processor
        await adapter.ensure_customer(CUSTOMER, idempotency_key="k")


def test_credentials_refuse_unknown_fields_and_hide_the_key() -> None:
    host = PluginHost.discover(["sandbox"], environ={})
    with pytest.raises(msgspec.ValidationError, match="api_secret"):
        host.adapter("sandbox", tenant_id=1, account_id=1, mode="test", credentials={"api_key": "x", "api_secret": "y"})
    assert "sk_sandbox_hidden" not in repr(SandboxCredentials(api_key="sk_sandbox_hidden"))


async def test_ids_are_the_same_for_the_same_key_in_any_process(make_adapter: MakeAdapter) -> None:
    here = (await make_adapter(account_id=5).ensure_customer(CUSTOMER, idempotency_key="outbox-17")).provider_id
    elsewhere = await anyio.run_process([sys.executable, "-c", OTHER_PROCESS])
    assert here == elsewhere.stdout.decode().strip()
    assert here.startswith("sbx_cus_")


async def test_another_accounts_id_is_no_such_object(make_adapter: MakeAdapter) -> None:
    mine, theirs = make_adapter(account_id=1), make_adapter(account_id=2)
    customer = (await mine.ensure_customer(CUSTOMER, idempotency_key="k")).provider_id
    await mine.update_customer(customer, CUSTOMER, idempotency_key="k2")
    for adapter, provider_id in ((theirs, customer), (mine, customer[:-1] + "0"), (mine, "cus_123")):
        with pytest.raises(ProviderError) as caught:
            await adapter.update_customer(provider_id, CUSTOMER, idempotency_key="k3")
        assert caught.value.code == "resource_missing"


async def test_an_idempotency_key_is_required(make_adapter: MakeAdapter) -> None:
    with pytest.raises(ProviderError, match="idempotency key is required"):
        await make_adapter().ensure_customer(CUSTOMER, idempotency_key=" ")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"currency": "EURO"}, "three-letter"),
        ({"amount": None}, "needs an amount"),
        ({"amount": -1}, "needs an amount"),
        ({"pricing_model": "package"}, "package_size"),
        ({"pricing_model": "tiered", "amount": None}, "at least one tier"),
        (
            {"pricing_model": "volume", "amount": None, "tiers": [TierData(up_to=None, unit_amount=Decimal(1))] * 2},
            "only the last tier",
        ),
        (
            {
                "pricing_model": "tiered",
                "amount": None,
                "tiers": [
                    TierData(up_to=10, unit_amount=Decimal(1)),
                    TierData(up_to=5, unit_amount=Decimal(1)),
                    TierData(up_to=None, unit_amount=Decimal(1)),
                ],
            },
            "increasing",
        ),
        ({"interval_count": 0}, "interval_count"),
        ({"provider_product_id": "prod_elsewhere"}, "no such product"),
    ],
)
async def test_invalid_prices_are_refused(make_adapter: MakeAdapter, change: dict[str, object], message: str) -> None:
    adapter = make_adapter()
    product = (await adapter.ensure_product(ProductData(product_id=1, name="API"), idempotency_key="p")).provider_id
    price = PriceData(
        plan_id=1,
        provider_product_id=product,
        pricing_model="flat",
        currency="EUR",
        billing_interval="month",
        amount=100,
    )
    with pytest.raises(ProviderError, match=message):
        await adapter.ensure_price(msgspec.structs.replace(price, **change), idempotency_key="price")


@pytest.mark.parametrize(
    ("interval", "count", "start", "end"),
    [
        ("month", 1, datetime(2024, 2, 1, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC)),
        ("month", 3, datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 4, 1, tzinfo=UTC)),
        ("year", 1, datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)),
        ("week", 1, datetime(2024, 2, 12, tzinfo=UTC), datetime(2024, 2, 19, tzinfo=UTC)),
        ("day", 1, datetime(2024, 2, 15, tzinfo=UTC), datetime(2024, 2, 16, tzinfo=UTC)),
    ],
)
def test_periods_follow_the_calendar(interval: BillingInterval, count: int, start: datetime, end: datetime) -> None:
    assert current_period(datetime(2024, 2, 15, 13, 30, tzinfo=UTC), interval, count) == (start, end)


async def test_a_subscription_follows_its_price_interval(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter()
    yearly = await _subscription(adapter, await _price(adapter, "year"))
    now = datetime.now(UTC)
    created = await adapter.resume_subscription(yearly, idempotency_key="r")
    assert created.status == "active"
    assert created.current_period_start == datetime(now.year, 1, 1, tzinfo=UTC)
    assert created.current_period_end == datetime(now.year + 1, 1, 1, tzinfo=UTC)
    daily = await _price(adapter, "day")
    changed = await adapter.update_subscription(
        yearly, SubscriptionChange(provider_price_id=daily, quantity=3), idempotency_key="u"
    )
    assert changed.current_period_end is not None
    assert changed.current_period_start is not None
    assert changed.current_period_end - changed.current_period_start == timedelta(days=1)


async def test_a_trial_is_reported_until_it_ends(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter()
    trial_end = (datetime.now(UTC) + timedelta(days=14)).replace(microsecond=0)
    sub = await _subscription(adapter, await _price(adapter), trial_end=trial_end)
    later = await adapter.update_subscription(sub, SubscriptionChange(quantity=2), idempotency_key="u")
    assert later.status == "trialing"
    assert later.current_period_end == trial_end
    past = await _subscription(adapter, await _price(adapter), trial_end=datetime.now(UTC) - timedelta(days=1))
    assert (await adapter.resume_subscription(past, idempotency_key="r")).status == "active"


async def test_subscription_states(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter()
    sub = await _subscription(adapter, await _price(adapter))
    at_end = await adapter.cancel_subscription(sub, at_period_end=True, idempotency_key="c1")
    assert (at_end.status, at_end.cancel_at_period_end, at_end.canceled_at) == ("active", True, None)
    now = await adapter.cancel_subscription(sub, at_period_end=False, idempotency_key="c2")
    assert now.status == "canceled"
    assert now.canceled_at is not None
    assert (await adapter.pause_subscription(sub, idempotency_key="p")).status == "paused"
    assert (await adapter.resume_subscription(sub, idempotency_key="r")).status == "active"
    with pytest.raises(ProviderError, match="quantity"):
        await adapter.update_subscription(sub, SubscriptionChange(quantity=0), idempotency_key="u")
    with pytest.raises(ProviderError, match="no such subscription"):
        await adapter.pause_subscription(sub.replace("sbx_sub_", "sbx_pay_"), idempotency_key="p2")


@pytest.mark.parametrize(
    ("token", "status", "failure_code"),
    [
        (payment_methods.SUCCEEDS, "succeeded", None),
        (payment_methods.DECLINED, "failed", "card_declined"),
        (payment_methods.INSUFFICIENT_FUNDS, "failed", "insufficient_funds"),
        (payment_methods.PENDING_SUCCEEDS, "pending", None),
        (payment_methods.PENDING_FAILS, "pending", None),
    ],
)
async def test_test_payment_methods(
    make_adapter: MakeAdapter, token: str, status: str, failure_code: str | None
) -> None:
    result = await make_adapter(webhook_secret=None).charge(
        ChargeRequest(payment_id=1, amount=1250, currency="JPY", payment_method=token), idempotency_key="pay"
    )
    assert (result.status, result.failure_code) == (status, failure_code)
    assert (result.failure_message is not None) == (status == "failed")


async def test_an_unknown_payment_method_is_refused_with_the_known_ones(make_adapter: MakeAdapter) -> None:
    request = ChargeRequest(payment_id=1, amount=100, currency="USD", payment_method="4242424242424242")
    with pytest.raises(ProviderError, match=payment_methods.PENDING_FAILS) as caught:
        await make_adapter().charge(request, idempotency_key="pay")
    assert caught.value.code == "resource_missing"
    with pytest.raises(ProviderError, match="at least 1 minor unit"):
        await make_adapter().charge(
            ChargeRequest(payment_id=1, amount=0, currency="USD", payment_method=payment_methods.SUCCEEDS),
            idempotency_key="pay",
        )


async def test_refund_rules(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter(webhook_secret=None)

    async def pay(token: str) -> str:
        request = ChargeRequest(payment_id=1, amount=1000, currency="USD", payment_method=token)
        return (await adapter.charge(request, idempotency_key=f"pay-{token}")).provider_payment_id

    paid, declined, settling = (
        await pay(payment_methods.SUCCEEDS),
        await pay(payment_methods.DECLINED),
        await pay(payment_methods.PENDING_SUCCEEDS),
    )

    async def refund(payment: str, amount: int, currency: str = "USD", *, on: ProviderAdapter = adapter) -> str:
        request = RefundRequest(refund_id=1, provider_payment_id=payment, amount=amount, currency=currency)
        return (await on.refund(request, idempotency_key=f"re-{payment}-{amount}")).status

    assert await refund(paid, 1000) == "succeeded"
    assert await refund(settling, 1) == "succeeded"
    for payment, amount, currency, message in (
        (paid, 1001, "USD", "between 1 and the payment's 1000"),
        (paid, 0, "USD", "between 1"),
        (paid, 10, "EUR", "is in USD"),
        (declined, 10, "USD", "did not succeed"),
    ):
        with pytest.raises(ProviderError, match=message):
            await refund(payment, amount, currency)
    with pytest.raises(ProviderError, match="no such payment"):
        await refund(paid, 10, on=make_adapter(account_id=99))


async def test_any_test_payment_method_attaches_and_an_unknown_token_is_refused(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter()
    assert isinstance(adapter, PaymentMethodAdapter)
    customer = await adapter.ensure_customer(CUSTOMER, idempotency_key="customer")
    attached = await adapter.attach_payment_method(
        payment_methods.DECLINED, customer.provider_id, idempotency_key="attach"
    )
    assert attached.provider_payment_method_id.startswith(f"{payment_methods.DECLINED}.")
    assert attached.type == "card"
    # The same again (a retry); another customer holds the same token under an id of its own.
    again = await adapter.attach_payment_method(payment_methods.DECLINED, customer.provider_id, idempotency_key="x")
    assert again == attached
    other = await adapter.ensure_customer(
        msgspec.structs.replace(CUSTOMER, customer_id=8), idempotency_key="customer-8"
    )
    theirs = await adapter.attach_payment_method(payment_methods.DECLINED, other.provider_id, idempotency_key="y")
    assert theirs.provider_payment_method_id != attached.provider_payment_method_id
    # Charged, the attached id behaves as its token.
    request = ChargeRequest(
        payment_id=41, amount=500, currency="USD", payment_method=attached.provider_payment_method_id
    )
    declined = await adapter.charge(request, idempotency_key="charge-41")
    assert (declined.status, declined.failure_code) == ("failed", "card_declined")
    with pytest.raises(ProviderError) as unknown:
        await adapter.attach_payment_method("pm_card_visa", customer.provider_id, idempotency_key="attach-2")
    assert unknown.value.code == "resource_missing"
    assert payment_methods.SUCCEEDS in str(unknown.value)  # says which tokens exist


async def test_any_method_detaches_and_bad_ids_are_refused(make_adapter: MakeAdapter) -> None:
    # The sandbox keeps no attachments: a detach, again, of another customer's method or of an id
    # it never gave succeeds; the key and customer are checked as for an attach.
    adapter = make_adapter()
    assert isinstance(adapter, PaymentMethodAdapter)
    customer = (await adapter.ensure_customer(CUSTOMER, idempotency_key="customer")).provider_id
    attached = await adapter.attach_payment_method(payment_methods.SUCCEEDS, customer, idempotency_key="attach")
    method = attached.provider_payment_method_id
    other = await adapter.ensure_customer(msgspec.structs.replace(CUSTOMER, customer_id=8), idempotency_key="c-8")
    for method_id, customer_id, key in (
        (method, customer, "detach"),
        (method, customer, "detach"),  # a retry
        (method, customer, "detach-again"),
        (method, other.provider_id, "detach-other"),
        ("pm_card_visa", customer, "detach-unknown"),
        (method, None, "detach-no-customer"),
    ):
        await adapter.detach_payment_method(method_id, customer_id, idempotency_key=key)
    for method_id, customer_id, key, code in (
        (method, "sbx_cus_forged_0000", "detach-forged", "resource_missing"),
        (method, customer, " ", "invalid_request"),
        (" ", customer, "detach-blank", "payment_method_required"),
    ):
        with pytest.raises(ProviderError) as refused:
            await adapter.detach_payment_method(method_id, customer_id, idempotency_key=key)
        assert refused.value.code == code
    another_account, bad_key = make_adapter(account_id=99), make_adapter(api_key="sk_live_x")
    assert isinstance(another_account, PaymentMethodAdapter)
    assert isinstance(bad_key, PaymentMethodAdapter)
    with pytest.raises(ProviderError, match="no such customer"):
        await another_account.detach_payment_method(method, customer, idempotency_key="detach")
    with pytest.raises(InvalidCredentialsError):
        await bad_key.detach_payment_method(method, customer, idempotency_key="detach")
