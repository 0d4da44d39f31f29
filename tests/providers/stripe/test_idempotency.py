"""Every POST the adapter sends carries billplane's Idempotency-Key (or a step derived from it)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import get_args

import msgspec
import pytest
from billplane_stripe.adapter import StripeAdapter

from billplane.plugins import ChargeRequest, CustomerData, PricingModel, RefundRequest, SubscriptionChange, UsageReport
from tests.providers.stripe import helpers
from tests.providers.stripe.fake_stripe import resources
from tests.providers.stripe.fake_stripe.server import FakeStripe

pytestmark = pytest.mark.anyio


async def _every_operation(adapter: StripeAdapter, fake: FakeStripe) -> None:
    customer = await helpers.customer(adapter)
    await adapter.update_customer(customer, CustomerData(customer_id=5, email=None, name="G"), idempotency_key="k-upd")
    for model in get_args(PricingModel):
        await helpers.price(adapter, model)
    sub = await helpers.subscription(adapter)
    await adapter.update_subscription(sub, SubscriptionChange(quantity=5), idempotency_key="k-change")
    await adapter.pause_subscription(sub, idempotency_key="k-pause")
    await adapter.resume_subscription(sub, idempotency_key="k-resume")
    await adapter.cancel_subscription(sub, at_period_end=True, idempotency_key="k-later")
    await adapter.cancel_subscription(sub, at_period_end=False, idempotency_key="k-now")
    fake.store.customers[customer]["invoice_settings"]["default_payment_method"] = resources.SUCCEEDS
    invoice = fake.store.open_invoice(customer, 900)
    request = ChargeRequest(payment_id=1, amount=900, currency="USD", provider_customer_id=customer)
    await adapter.charge(msgspec.structs.replace(request, provider_invoice_id=invoice), idempotency_key="k-invoice")
    paid = await adapter.charge(request, idempotency_key="k-charge")
    await adapter.refund(
        RefundRequest(refund_id=1, provider_payment_id=paid.provider_payment_id, amount=100, currency="USD"),
        idempotency_key="k-refund",
    )
    usage = UsageReport(
        usage_record_id=1,
        plan_id=31,
        provider_subscription_id=sub,
        provider_customer_id=customer,
        provider_price_id="price_x",
        quantity=1,
        timestamp=datetime.now(UTC),
    )
    await adapter.report_usage(usage, idempotency_key="k-usage")
    await adapter.delete_customer(customer, idempotency_key="k-delete")


async def test_every_post_has_an_idempotency_key(stripe_adapter: StripeAdapter, fake_stripe: FakeStripe) -> None:
    await _every_operation(stripe_adapter, fake_stripe)
    posts = fake_stripe.posts()
    templates = {r.template for r in posts}
    assert templates >= {
        "/v1/customers",
        "/v1/customers/{customer}",
        "/v1/products",
        "/v1/prices",
        "/v1/billing/meters",
        "/v1/billing/meter_events",
        "/v1/subscriptions",
        "/v1/subscriptions/{subscription_exposed_id}",
        "/v1/invoices/{invoice}/pay",
        "/v1/payment_intents",
        "/v1/refunds",
    }
    missing = [f"{r.method} {r.path}" for r in posts if not r.idempotency_key]
    assert not missing, f"POSTs without an Idempotency-Key: {missing}"
    keys = [r.idempotency_key for r in posts]
    assert len(keys) == len(set(keys)), "two POSTs shared a key: Stripe would replay the first one's answer"
    for given in (
        "k-upd",
        "k-change",
        "k-pause",
        "k-resume",
        "k-later",
        "k-invoice",
        "k-charge",
        "k-refund",
        "k-usage",
    ):
        assert given in keys


async def test_a_metered_price_derives_one_key_per_step(stripe_adapter: StripeAdapter, fake_stripe: FakeStripe) -> None:
    product = await helpers.product(stripe_adapter)
    await stripe_adapter.ensure_price(helpers.price_data("metered", product), idempotency_key="k-metered")
    assert fake_stripe.last("POST", "/v1/billing/meters").idempotency_key == "k-metered:meter"
    assert fake_stripe.last("POST", "/v1/prices").idempotency_key == "k-metered"


async def test_the_same_key_replays_stripes_answer(stripe_adapter: StripeAdapter, fake_stripe: FakeStripe) -> None:
    data = CustomerData(customer_id=5, email="a@example.com", name=None)
    first = await stripe_adapter.ensure_customer(data, idempotency_key="k-same")
    again = await stripe_adapter.ensure_customer(data, idempotency_key="k-same")
    assert first == again
    assert len(fake_stripe.store.customers) == 1
