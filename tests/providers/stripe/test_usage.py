"""Metered usage as meter events: keyed by billplane's usage record id, counted once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from billplane_stripe.adapter import StripeAdapter

from billplane.plugins import ProviderError, UsageReport
from tests.providers.stripe import helpers
from tests.providers.stripe.conftest import TENANT_ID
from tests.providers.stripe.fake_stripe.server import FakeStripe

pytestmark = pytest.mark.anyio
EVENT_NAME = f"billplane_t{TENANT_ID}_plan_31"


async def _report(adapter: StripeAdapter, customer: str, record: int, quantity: int) -> None:
    usage = UsageReport(
        usage_record_id=record,
        plan_id=31,
        provider_subscription_id="sub_x",
        provider_customer_id=customer,
        provider_price_id="price_x",
        quantity=quantity,
        timestamp=datetime(2026, 11, 1, 12, 0, tzinfo=UTC),
    )
    await adapter.report_usage(usage, idempotency_key=helpers.key())


async def test_meter_event_params(stripe_adapter: StripeAdapter, fake_stripe: FakeStripe) -> None:
    customer = await helpers.customer(stripe_adapter)
    await helpers.price(stripe_adapter, "metered")
    await _report(stripe_adapter, customer, 501, 12)
    assert fake_stripe.last("POST", "/v1/billing/meter_events").params == {
        "event_name": EVENT_NAME,
        "identifier": f"billplane-t{TENANT_ID}-usage-501",
        "timestamp": str(int(datetime(2026, 11, 1, 12, 0, tzinfo=UTC).timestamp())),
        "payload": {"stripe_customer_id": customer, "value": "12"},
    }


@pytest.mark.parametrize("repeat", ["dropped", "refused"])
async def test_a_record_reported_twice_counts_once(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe, repeat: str
) -> None:
    fake_stripe.store.duplicate_identifier_error = repeat == "refused"  # what Stripe does with the repeat
    customer = await helpers.customer(stripe_adapter)
    await helpers.price(stripe_adapter, "metered")
    await _report(stripe_adapter, customer, 1, 5)
    await _report(stripe_adapter, customer, 1, 5)  # a retry under a new key
    await _report(stripe_adapter, customer, 2, 3)
    assert fake_stripe.store.usage_total(EVENT_NAME, customer) == 8


async def test_usage_of_a_plan_without_meter_is_stripes_error(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    customer = await helpers.customer(stripe_adapter)
    with pytest.raises(ProviderError, match="No active meter"):
        await _report(stripe_adapter, customer, 1, 5)
    assert not fake_stripe.store.meter_events
