"""Customers at Stripe: created with billplane's id, updated (a cleared field is cleared), deleted once."""

from __future__ import annotations

import pytest
from billplane_stripe.adapter import StripeAdapter

from billplane.plugins import CustomerData
from tests.providers.stripe import helpers
from tests.providers.stripe.fake_stripe.server import FakeStripe

pytestmark = pytest.mark.anyio


async def test_create_sends_only_what_is_known(stripe_adapter: StripeAdapter, fake_stripe: FakeStripe) -> None:
    data = CustomerData(customer_id=5, email="ada@example.com", name=None, metadata={"team": "r&d"})
    ref = await stripe_adapter.ensure_customer(data, idempotency_key=helpers.key())
    assert fake_stripe.last("POST", "/v1/customers").params == {
        "email": "ada@example.com",
        "metadata": {"team": "r&d", "billplane_customer_id": "5"},
    }
    assert fake_stripe.store.customers[ref.provider_id]["email"] == "ada@example.com"


async def test_update_clears_a_removed_field(stripe_adapter: StripeAdapter, fake_stripe: FakeStripe) -> None:
    customer = await helpers.customer(stripe_adapter)
    await stripe_adapter.update_customer(
        customer, CustomerData(customer_id=5, email=None, name="Grace"), idempotency_key=helpers.key()
    )
    assert fake_stripe.last("POST", "/v1/customers/{customer}").params == {
        "email": "",
        "name": "Grace",
        "metadata": {"billplane_customer_id": "5"},
    }
    assert fake_stripe.store.customers[customer]["email"] is None


async def test_delete_twice_is_not_an_error(stripe_adapter: StripeAdapter, fake_stripe: FakeStripe) -> None:
    customer = await helpers.customer(stripe_adapter)
    await stripe_adapter.delete_customer(customer, idempotency_key=helpers.key())
    await stripe_adapter.delete_customer(customer, idempotency_key=helpers.key())
    assert fake_stripe.store.customers[customer]["deleted"] is True
    deletes = [r for r in fake_stripe.requests if r.method == "DELETE"]
    assert [r.status for r in deletes] == [200, 404]
    assert all(r.idempotency_key is None for r in deletes)
