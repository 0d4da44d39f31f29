"""Subscriptions at Stripe: items, quantities, trials, changes, cancellations, pause and resume."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from billplane_stripe import subscriptions
from billplane_stripe.adapter import StripeAdapter

from billplane.plugins import ProviderError, SubscriptionChange, SubscriptionData, UnsupportedOperationError
from tests.providers.stripe import helpers
from tests.providers.stripe.conftest import TENANT_ID
from tests.providers.stripe.fake_stripe.server import FakeStripe

pytestmark = pytest.mark.anyio
SUB = "/v1/subscriptions/{subscription_exposed_id}"


async def test_create_with_quantity_and_trial(stripe_adapter: StripeAdapter, fake_stripe: FakeStripe) -> None:
    customer = await helpers.customer(stripe_adapter)
    price = await helpers.price(stripe_adapter)
    trial_end = datetime.now(UTC).replace(microsecond=0) + timedelta(days=14)
    data = SubscriptionData(
        subscription_id=9,
        provider_customer_id=customer,
        provider_price_id=price,
        quantity=4,
        trial_end=trial_end,
        metadata={"origin": "test"},
    )
    created = await stripe_adapter.create_subscription(data, idempotency_key=helpers.key())
    assert fake_stripe.last("POST", "/v1/subscriptions").params == {
        "customer": customer,
        "items": [{"price": price, "quantity": "4"}],
        "metadata": {"origin": "test", "billplane_subscription_id": "9", "billplane_tenant_id": "7"},
        "trial_end": str(int(trial_end.timestamp())),
    }
    assert created.status == "trialing"
    assert created.trial_end == trial_end
    assert created.quantity == 4
    assert created.current_period_start is not None
    assert created.current_period_end is not None
    assert created.current_period_end > created.current_period_start


async def test_a_metered_item_has_no_quantity(stripe_adapter: StripeAdapter, fake_stripe: FakeStripe) -> None:
    await helpers.subscription(stripe_adapter, "metered")
    (item,) = fake_stripe.last("POST", "/v1/subscriptions").params["items"]
    assert "quantity" not in item


@pytest.mark.parametrize(("policy", "behavior"), [("immediate", "always_invoice"), ("none", "none")])
async def test_quantity_change_with_proration(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe, policy: str, behavior: str
) -> None:
    sub = await helpers.subscription(stripe_adapter)
    item = fake_stripe.store.subscriptions[sub]["items"]["data"][0]
    updated = await stripe_adapter.update_subscription(
        sub,
        SubscriptionChange(quantity=7, proration=policy),  # type: ignore[arg-type]
        idempotency_key=helpers.key(),
    )
    assert fake_stripe.last("POST", SUB).params == {
        # The item's price kept, not named again: Stripe takes only an active price there.
        "items": [{"id": item["id"], "quantity": "7"}],
        "proration_behavior": behavior,
    }
    assert updated.quantity == 7


async def test_plan_change_keeps_the_quantity(stripe_adapter: StripeAdapter, fake_stripe: FakeStripe) -> None:
    sub = await helpers.subscription(stripe_adapter, quantity=3)
    other = await helpers.price(stripe_adapter, "flat")
    await stripe_adapter.update_subscription(
        sub, SubscriptionChange(provider_price_id=other), idempotency_key=helpers.key()
    )
    (item,) = fake_stripe.last("POST", SUB).params["items"]
    assert (item["price"], item["quantity"]) == (other, "3")
    assert fake_stripe.store.subscriptions[sub]["items"]["data"][0]["price"]["id"] == other


async def test_period_end_changes_are_unsupported_and_send_nothing(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    sub = await helpers.subscription(stripe_adapter)
    sent = len(fake_stripe.requests)
    with pytest.raises(UnsupportedOperationError, match="period_end"):
        await stripe_adapter.update_subscription(
            sub, SubscriptionChange(quantity=2, proration="period_end"), idempotency_key=helpers.key()
        )
    assert len(fake_stripe.requests) == sent


async def test_cancel_at_period_end_taken_back_then_now(stripe_adapter: StripeAdapter, fake_stripe: FakeStripe) -> None:
    sub = await helpers.subscription(stripe_adapter)
    later = await stripe_adapter.cancel_subscription(sub, at_period_end=True, idempotency_key=helpers.key())
    assert fake_stripe.last("POST", SUB).params == {"cancel_at_period_end": "true"}
    assert (later.status, later.cancel_at_period_end) == ("active", True)
    kept = await stripe_adapter.undo_cancel(sub, idempotency_key=helpers.key())
    assert fake_stripe.last("POST", SUB).params == {"cancel_at_period_end": "false"}
    assert (kept.status, kept.cancel_at_period_end) == ("active", False)
    now = await stripe_adapter.cancel_subscription(sub, at_period_end=False, idempotency_key=helpers.key())
    assert fake_stripe.last("DELETE", SUB).path == f"/v1/subscriptions/{sub}"
    assert now.status == "canceled"
    assert now.canceled_at is not None
    again = await stripe_adapter.cancel_subscription(sub, at_period_end=False, idempotency_key=helpers.key())
    assert again.status == "canceled"
    assert len([r for r in fake_stripe.requests if r.method == "DELETE"]) == 1


async def test_pause_and_resume(stripe_adapter: StripeAdapter, fake_stripe: FakeStripe) -> None:
    sub = await helpers.subscription(stripe_adapter)
    paused = await stripe_adapter.pause_subscription(sub, idempotency_key=helpers.key())
    assert fake_stripe.last("POST", SUB).form == [("pause_collection[behavior]", "void")]
    assert paused.status == "paused"
    resumed = await stripe_adapter.resume_subscription(sub, idempotency_key=helpers.key())
    assert fake_stripe.last("POST", SUB).form == [("pause_collection", "")]
    assert resumed.status == "active"


async def test_an_unknown_subscription_is_stripes_error(stripe_adapter: StripeAdapter) -> None:
    with pytest.raises(ProviderError) as caught:
        await stripe_adapter.pause_subscription("sub_missing", idempotency_key=helpers.key())
    assert caught.value.code == "resource_missing"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"status": "incomplete_expired"}, "canceled"),
        ({"status": "paused"}, "paused"),
        ({"status": "active", "pause_collection": {"behavior": "void"}}, "paused"),
        ({"status": "past_due", "pause_collection": {"behavior": "keep_as_draft"}}, "paused"),
        ({"status": "canceled", "pause_collection": {"behavior": "void"}}, "canceled"),
        ({"status": "trialing"}, "trialing"),
        ({"status": "past_due"}, "past_due"),
        ({"status": "unpaid"}, "unpaid"),
        ({"status": "incomplete"}, "incomplete"),
    ],
)
def test_status_mapping(fields: dict[str, object], expected: str) -> None:
    assert subscriptions.status({"pause_collection": None, **fields}) == expected


def test_period_of_an_older_api_version_is_read_from_the_subscription() -> None:
    start, end = 1_700_000_000, 1_702_592_000
    sub = subscriptions.to_provider(
        {"id": "sub_1", "status": "active", "current_period_start": start, "current_period_end": end, "items": {}}
    )
    assert sub.current_period_start == datetime.fromtimestamp(start, UTC)
    assert sub.current_period_end == datetime.fromtimestamp(end, UTC)
    assert sub.quantity is None


async def test_a_create_sent_again_under_a_new_key_finds_the_subscription_instead_of_a_second(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe, make_context: Any
) -> None:
    """Every answer of the first create was lost; a sync by hand asks again with a new key."""
    customer = await helpers.customer(stripe_adapter)
    price = await helpers.price(stripe_adapter)
    data = SubscriptionData(subscription_id=41, provider_customer_id=customer, provider_price_id=price, quantity=2)
    first = await stripe_adapter.create_subscription(data, idempotency_key=helpers.key())

    again = await stripe_adapter.create_subscription(data, idempotency_key=helpers.key())

    assert again.provider_id == first.provider_id
    assert len(fake_stripe.store.subscriptions) == 1
    listed = fake_stripe.last("GET", "/v1/subscriptions")
    assert (listed.params["customer"], listed.params["status"]) == (customer, "all")
    assert not [request for request in fake_stripe.requests if request.path.endswith("/search")]

    # Another tenant's subscription 41 on the same Stripe account is not this one.
    other_context = msgspec.structs.replace(make_context(), tenant_id=TENANT_ID + 1)
    other = StripeAdapter(other_context, other_context.credentials)
    theirs = await other.create_subscription(data, idempotency_key=helpers.key())
    assert theirs.provider_id != first.provider_id

    # An ended one can no longer bill: a new one is created.
    await stripe_adapter.cancel_subscription(first.provider_id, at_period_end=False, idempotency_key=helpers.key())
    renewed = await stripe_adapter.create_subscription(data, idempotency_key=helpers.key())
    assert renewed.provider_id not in {first.provider_id, theirs.provider_id}
    assert len(fake_stripe.store.subscriptions) == 3


async def test_a_subscription_found_that_differs_from_the_create_is_refused_not_taken(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    """The tenant changed the quantity while the first create's answers were lost: billing the
    Stripe subscription as found would bill the old quantity."""
    customer = await helpers.customer(stripe_adapter)
    price = await helpers.price(stripe_adapter)
    data = SubscriptionData(subscription_id=42, provider_customer_id=customer, provider_price_id=price, quantity=2)
    first = await stripe_adapter.create_subscription(data, idempotency_key=helpers.key())

    for changed in (
        msgspec.structs.replace(data, quantity=5),
        msgspec.structs.replace(data, provider_price_id=await helpers.price(stripe_adapter)),
    ):
        with pytest.raises(ProviderError) as refused:
            await stripe_adapter.create_subscription(changed, idempotency_key=helpers.key())
        assert refused.value.code == "subscription_differs"
        assert first.provider_id in refused.value.message
    assert len(fake_stripe.store.subscriptions) == 1


async def test_metadata_is_the_tenants_as_billplane_has_it_now(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    data = SubscriptionData(
        subscription_id=9,
        provider_customer_id=await helpers.customer(stripe_adapter),
        provider_price_id=await helpers.price(stripe_adapter),
        metadata={"tier": "gold", "region": "eu"},
    )
    sub = (await stripe_adapter.create_subscription(data, idempotency_key=helpers.key())).provider_id
    fake_stripe.store.subscriptions[sub]["metadata"]["set_in_dashboard"] = "x"  # not the tenant's in billplane

    key = helpers.key()
    await stripe_adapter.update_subscription_metadata(sub, {"tier": "platinum", "note": "n"}, idempotency_key=key)
    assert fake_stripe.last("POST", SUB).params == {
        "metadata": {"tier": "platinum", "note": "n", "region": "", "set_in_dashboard": ""}
    }
    ids = {"billplane_subscription_id": "9", "billplane_tenant_id": "7"}
    assert fake_stripe.store.subscriptions[sub]["metadata"] == {"tier": "platinum", "note": "n", **ids}

    # The row's retry after a lost answer: nothing is left to send, and nothing is sent.
    posts = len(fake_stripe.posts())
    await stripe_adapter.update_subscription_metadata(sub, {"tier": "platinum", "note": "n"}, idempotency_key=key)
    assert len(fake_stripe.posts()) == posts
    # A retry that sends a later edit (each attempt sends the metadata as it is then) under the
    # same row's key is no idempotency error: its parameters have a key of their own.
    await stripe_adapter.update_subscription_metadata(sub, {"tier": "silver"}, idempotency_key=key)
    assert fake_stripe.store.subscriptions[sub]["metadata"] == {"tier": "silver", **ids}
    # billplane's own ids stay whatever the tenant's metadata says.
    await stripe_adapter.update_subscription_metadata(sub, {"billplane_tenant_id": "8"}, idempotency_key=helpers.key())
    assert fake_stripe.store.subscriptions[sub]["metadata"] == ids


async def test_metadata_stripe_could_not_hold_beside_billplanes_ids_is_refused_before_any_call(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    sub = await helpers.subscription(stripe_adapter)
    too_many = {f"k{number}": "v" for number in range(49)}
    with pytest.raises(ProviderError, match="this subscription's metadata has 49 keys; remove 1") as caught:
        await stripe_adapter.update_subscription_metadata(sub, too_many, idempotency_key=helpers.key())
    assert caught.value.code == "metadata_too_large"
    data = SubscriptionData(
        subscription_id=10, provider_customer_id=await helpers.customer(stripe_adapter),
        provider_price_id=await helpers.price(stripe_adapter), metadata=too_many,
    )  # fmt: skip
    posts = len(fake_stripe.posts())
    with pytest.raises(ProviderError, match="at most 50 metadata keys"):
        await stripe_adapter.create_subscription(data, idempotency_key=helpers.key())
    assert len(fake_stripe.posts()) == posts
    del too_many["k0"]  # 48 of the tenant's and billplane's 2: Stripe's 50
    await stripe_adapter.update_subscription_metadata(sub, too_many, idempotency_key=helpers.key())
    assert len(fake_stripe.store.subscriptions[sub]["metadata"]) == 50
