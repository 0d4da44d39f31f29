"""The approval flow, revisions, cancel, suspend and resume, captures and refunds against the fake."""

from __future__ import annotations

import json
import uuid

import msgspec
import pytest
from billplane_paypal.adapter import PayPalAdapter

from billplane.plugins import (
    ChargeRequest,
    PriceData,
    ProductData,
    ProviderError,
    ProviderSubscription,
    RefundRequest,
    RetryableProviderError,
    SubscriptionChange,
    SubscriptionData,
    UnsupportedOperationError,
)
from tests.providers.paypal.conftest import MakeAdapter, new_client_id
from tests.providers.paypal.fake_paypal import FakePayPal


async def _plan(adapter: PayPalAdapter, *, trial_days: int | None = None) -> str:
    product = await adapter.ensure_product(ProductData(product_id=1, name="Team"), idempotency_key=f"p-{id(adapter)}")
    price = PriceData(
        plan_id=2,
        provider_product_id=product.provider_id,
        pricing_model="per_seat",
        currency="USD",
        billing_interval="month",
        amount=1000,
        trial_period_days=trial_days,
    )
    return (await adapter.ensure_price(price, idempotency_key=f"pl-{id(adapter)}-{trial_days}")).provider_id


def _data(plan: str, return_url: str | None = None) -> SubscriptionData:
    return SubscriptionData(
        subscription_id=42,
        provider_customer_id="billplane-customer-1-x",
        provider_price_id=plan,
        quantity=3,
        return_url=return_url,
    )


async def test_a_new_subscription_is_incomplete_with_paypals_approve_link(
    make_adapter: MakeAdapter, paypal: FakePayPal
) -> None:
    adapter = make_adapter()
    plan = await _plan(adapter)
    created = await adapter.create_subscription(_data(plan), idempotency_key="s1")
    assert created.status == "incomplete"
    assert created.next_action is not None
    assert created.next_action.type == "redirect"
    approve = next(link for link in paypal.subscriptions[created.provider_id]["links"] if link["rel"] == "approve")
    assert created.next_action.url == approve["href"]
    assert created.quantity == 3
    sent = json.loads(paypal.posts()[-1].body)
    assert sent["quantity"] == "3"
    assert sent["custom_id"] == "billplane:42"
    assert sent["application_context"]["return_url"] == "https://example.com/billplane/paypal/approved"
    # The customer approves at PayPal: the subscription is then active (the webhook tells billplane).
    paypal.approve(created.provider_id)
    paused = await adapter.pause_subscription(created.provider_id, idempotency_key="s1-pause")
    assert paused.status == "paused"
    resumed = await adapter.resume_subscription(created.provider_id, idempotency_key="s1-resume")
    assert resumed.status == "active"
    assert resumed.next_action is None
    assert resumed.current_period_end is not None


async def test_return_and_cancel_urls_come_from_the_subscription_then_the_operator(
    make_adapter: MakeAdapter, paypal: FakePayPal
) -> None:
    options = {"return_url": "https://shop.example/thanks", "cancel_url": "https://shop.example/cart"}
    adapter = make_adapter(options=options)
    plan = await _plan(adapter)
    await adapter.create_subscription(_data(plan, return_url="https://tenant.example/ok"), idempotency_key="u1")
    context = json.loads(paypal.posts()[-1].body)["application_context"]
    assert context["return_url"] == "https://tenant.example/ok"
    assert context["cancel_url"] == "https://shop.example/cart"


async def test_a_subscription_in_its_trial_is_trialing(make_adapter: MakeAdapter, paypal: FakePayPal) -> None:
    paypal.auto_approve = True
    adapter = make_adapter()
    plan = await _plan(adapter, trial_days=14)
    created = await adapter.create_subscription(_data(plan), idempotency_key="t1")
    paused = await adapter.pause_subscription(created.provider_id, idempotency_key="t1-p")
    resumed = await adapter.resume_subscription(paused.provider_id, idempotency_key="t1-r")
    assert resumed.status == "trialing"
    assert resumed.trial_end is not None


async def test_a_revision_needing_consent_surfaces_its_approve_link(
    make_adapter: MakeAdapter, paypal: FakePayPal
) -> None:
    paypal.auto_approve = True
    adapter = make_adapter()
    plan, other = await _plan(adapter), await _plan(adapter, trial_days=3)
    created = await adapter.create_subscription(_data(plan), idempotency_key="r1")
    revised = await adapter.update_subscription(
        created.provider_id, SubscriptionChange(provider_price_id=other, quantity=5), idempotency_key="r1-rev"
    )
    assert revised.status == "active"
    assert revised.next_action is not None
    assert "ba_token=" in revised.next_action.url
    assert json.loads(paypal.posts()[-1].body) == {
        "application_context": json.loads(paypal.posts()[-1].body)["application_context"],
        "plan_id": other,
        "quantity": "5",
    }
    paypal.approve(created.provider_id)  # the customer consents
    after = await adapter.pause_subscription(created.provider_id, idempotency_key="r1-p")
    assert after.quantity == 5


@pytest.mark.parametrize("when", ["now", "at_period_end"])
async def test_cancel_stops_billing_at_paypal_and_again_is_no_error(
    make_adapter: MakeAdapter, paypal: FakePayPal, when: str
) -> None:
    at_period_end = when == "at_period_end"
    paypal.auto_approve = True
    adapter = make_adapter()
    created = await adapter.create_subscription(_data(await _plan(adapter)), idempotency_key=f"c-{at_period_end}")
    canceled = await adapter.cancel_subscription(
        created.provider_id, at_period_end=at_period_end, idempotency_key=f"c1-{at_period_end}"
    )
    assert canceled.status == "canceled"
    assert canceled.canceled_at is not None
    assert paypal.subscriptions[created.provider_id]["status"] == "CANCELLED"
    again = await adapter.cancel_subscription(
        created.provider_id, at_period_end=False, idempotency_key=f"c2-{at_period_end}"
    )
    assert again.status == "canceled"


async def test_a_create_sent_again_under_a_new_key_is_answered_with_the_subscription_the_first_made(
    make_adapter: MakeAdapter, paypal: FakePayPal
) -> None:
    """A manual sync after a create that gave up sends a new outbox row's key: PayPal cannot be
    searched for the first subscription, but its request id (one per billplane subscription)
    replays it. Another tenant's subscription of the same id on the same PayPal app is its own."""
    app = new_client_id()
    adapter = make_adapter(tenant_id=3, client_id=app)
    plan = await _plan(adapter)
    before = set(paypal.subscriptions)
    paypal.lose_next_answer("/v1/billing/subscriptions")
    with pytest.raises(RetryableProviderError):
        await adapter.create_subscription(_data(plan), idempotency_key="row-1")
    [made] = set(paypal.subscriptions) - before

    again = await adapter.create_subscription(_data(plan), idempotency_key="row-2")
    assert again.provider_id == made
    assert set(paypal.subscriptions) - before == {made}
    assert again.next_action is not None
    assert [entry.headers["paypal-request-id"] for entry in paypal.posts()[-2:]] == ["billplane-3-subscription-42"] * 2

    another_tenant = make_adapter(tenant_id=4, client_id=app)
    theirs = await another_tenant.create_subscription(_data(plan), idempotency_key="row-1")
    assert theirs.provider_id not in {made, *before}


async def test_a_create_replayed_for_a_subscription_changed_since_is_refused(
    make_adapter: MakeAdapter, paypal: FakePayPal
) -> None:
    """The first create's subscription bills 3 seats; the billplane subscription has 5 now: PayPal
    answers with the first, which must not be taken for this one (as Stripe's adapter refuses)."""
    adapter = make_adapter()
    plan = await _plan(adapter)
    paypal.lose_next_answer("/v1/billing/subscriptions")
    with pytest.raises(RetryableProviderError):
        await adapter.create_subscription(_data(plan), idempotency_key="row-1")
    changed = msgspec.structs.replace(_data(plan), quantity=5)
    with pytest.raises(ProviderError) as caught:
        await adapter.create_subscription(changed, idempotency_key="row-2")
    assert caught.value.code == "subscription_differs"
    assert "quantity 3, not 5" in caught.value.message
    assert not isinstance(caught.value, RetryableProviderError)


async def test_an_approval_that_never_comes_can_be_cancelled(make_adapter: MakeAdapter, paypal: FakePayPal) -> None:
    adapter = make_adapter()
    created = await adapter.create_subscription(_data(await _plan(adapter)), idempotency_key="never")
    assert created.status == "incomplete"
    canceled = await adapter.cancel_subscription(created.provider_id, at_period_end=False, idempotency_key="never-c")
    assert canceled.status == "canceled"


async def test_pausing_a_subscription_not_yet_approved_is_paypals_refusal(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter()
    created = await adapter.create_subscription(_data(await _plan(adapter)), idempotency_key="pending")
    with pytest.raises(ProviderError) as caught:
        await adapter.pause_subscription(created.provider_id, idempotency_key="pending-p")
    assert caught.value.code == "SUBSCRIPTION_STATUS_INVALID"


async def _move(adapter: PayPalAdapter, operation: str, sub: str, key: str) -> ProviderSubscription:
    if operation == "pause":
        return await adapter.pause_subscription(sub, idempotency_key=key)
    if operation == "resume":
        return await adapter.resume_subscription(sub, idempotency_key=key)
    return await adapter.cancel_subscription(sub, at_period_end=False, idempotency_key=key)


# billplane's operation -> PayPal's action, the PayPal status it leaves, billplane's status.
_MOVES = {
    "pause": ("suspend", "SUSPENDED", "paused"),
    "resume": ("activate", "ACTIVE", "active"),
    "cancel": ("cancel", "CANCELLED", "canceled"),
}


@pytest.mark.parametrize("operation", sorted(_MOVES))
async def test_a_state_change_whose_answer_was_lost_is_done_when_retried(
    make_adapter: MakeAdapter, paypal: FakePayPal, operation: str
) -> None:
    """PayPal replays none of these (its spec declares no PayPal-Request-Id for them): the sync
    engine's retry is refused (SUBSCRIPTION_STATUS_INVALID) precisely because the first call worked."""
    action, paypal_status, status = _MOVES[operation]
    adapter = make_adapter()
    sub = paypal.seed_active_subscription()
    if operation == "resume":
        await adapter.pause_subscription(sub, idempotency_key=f"{sub}-before")
    paypal.lose_next_answer(f"/v1/billing/subscriptions/{sub}/{action}")
    with pytest.raises(RetryableProviderError):
        await _move(adapter, operation, sub, f"{sub}-{operation}")
    assert paypal.subscriptions[sub]["status"] == paypal_status
    retried = await _move(adapter, operation, sub, f"{sub}-{operation}")
    assert retried.status == status


async def test_pausing_a_paused_or_resuming_an_active_subscription_is_no_error(
    make_adapter: MakeAdapter, paypal: FakePayPal
) -> None:
    """A sync run again by hand (a new key) asks for the state the subscription is already in."""
    adapter = make_adapter()
    sub = paypal.seed_active_subscription()
    assert (await adapter.resume_subscription(sub, idempotency_key=f"{sub}-r1")).status == "active"
    await adapter.pause_subscription(sub, idempotency_key=f"{sub}-p1")
    assert (await adapter.pause_subscription(sub, idempotency_key=f"{sub}-p2")).status == "paused"
    assert paypal.subscriptions[sub]["status"] == "SUSPENDED"


@pytest.mark.parametrize("operation", ["pause", "resume"])
async def test_a_refusal_of_a_state_not_reached_is_still_an_error(
    make_adapter: MakeAdapter, paypal: FakePayPal, operation: str
) -> None:
    adapter = make_adapter()
    sub = paypal.seed_active_subscription()
    await adapter.cancel_subscription(sub, at_period_end=False, idempotency_key=f"{sub}-c")
    with pytest.raises(ProviderError) as caught:
        await _move(adapter, operation, sub, f"{sub}-{operation}")
    assert caught.value.code == "SUBSCRIPTION_STATUS_INVALID"


async def test_a_revision_whose_answer_was_lost_is_sent_again(make_adapter: MakeAdapter, paypal: FakePayPal) -> None:
    """PayPal replays no revise either, but a revision names the plan and quantity wanted: sent
    again, it is the same revision, with its consent link."""
    adapter = make_adapter()
    sub = paypal.seed_active_subscription()
    paypal.lose_next_answer(f"/v1/billing/subscriptions/{sub}/revise")
    with pytest.raises(RetryableProviderError):
        await adapter.update_subscription(sub, SubscriptionChange(quantity=4), idempotency_key=f"{sub}-rev")
    revised = await adapter.update_subscription(sub, SubscriptionChange(quantity=4), idempotency_key=f"{sub}-rev")
    assert revised.next_action is not None
    paypal.approve(sub)
    assert paypal.subscriptions[sub]["quantity"] == "4"


async def test_a_charge_captures_the_outstanding_balance_and_a_refund_returns_part(
    make_adapter: MakeAdapter, paypal: FakePayPal
) -> None:
    adapter = make_adapter()
    sub = paypal.seed_active_subscription(value="1500", currency="JPY")
    request = ChargeRequest(payment_id=9, amount=1500, currency="JPY", provider_subscription_id=sub)
    charge = await adapter.charge(request, idempotency_key="cap-1")
    assert (charge.status, charge.amount, charge.currency, charge.provider_subscription_id) == (
        "succeeded",
        1500,
        "JPY",
        sub,
    )
    assert json.loads(paypal.posts()[-1].body) == {
        "note": "billplane payment 9",
        "capture_type": "OUTSTANDING_BALANCE",
        "amount": {"currency_code": "JPY", "value": "1500"},
    }
    refund = await adapter.refund(
        RefundRequest(
            refund_id=3, provider_payment_id=charge.provider_payment_id, amount=500, currency="JPY", reason="dup"
        ),
        idempotency_key="ref-1",
    )
    assert (refund.status, refund.amount, refund.provider_payment_id) == ("succeeded", 500, charge.provider_payment_id)
    assert json.loads(paypal.posts()[-1].body) == {
        "amount": {"currency_code": "JPY", "value": "500"},
        "invoice_id": "billplane-refund-1-3",  # tenant 1's refund 3: refund ids are per tenant
        "note_to_payer": "dup",
    }
    with pytest.raises(ProviderError) as caught:  # more than is left
        await adapter.refund(
            RefundRequest(refund_id=4, provider_payment_id=charge.provider_payment_id, amount=1001, currency="JPY"),
            idempotency_key="ref-2",
        )
    assert caught.value.code == "REFUND_AMOUNT_EXCEEDED"


async def test_two_tenants_refunds_with_the_same_id_both_go_through_one_paypal_account(
    make_adapter: MakeAdapter, paypal: FakePayPal
) -> None:
    """PayPal refuses an invoice_id used for a refund before (DUPLICATE_INVOICE_ID); refund ids are
    per tenant, and two tenants may connect one PayPal account."""
    paypal.unique_invoice_ids = True
    refund_id = uuid.uuid4().int % 10**12  # the fake lives for the whole run: a refund id no other test used
    client_id = new_client_id()
    first, second = (make_adapter(client_id=client_id, tenant_id=tenant) for tenant in (1, 2))
    refunds = []
    for number, adapter in enumerate((first, second)):
        sub = paypal.seed_active_subscription(value="10.00", currency="USD")
        charge = await adapter.charge(
            ChargeRequest(payment_id=1, amount=1000, currency="USD", provider_subscription_id=sub),
            idempotency_key=f"cap-{number}",
        )
        request = RefundRequest(
            refund_id=refund_id, provider_payment_id=charge.provider_payment_id, amount=100, currency="USD"
        )
        refunds.append(await adapter.refund(request, idempotency_key=f"ref-{number}"))
    assert [refund.status for refund in refunds] == ["succeeded", "succeeded"]
    assert refunds[0].provider_refund_id != refunds[1].provider_refund_id

    # The same tenant's refund sent again under a new request id is refused: never refunded twice.
    with pytest.raises(ProviderError) as caught:
        await first.refund(request, idempotency_key="ref-again")
    assert caught.value.code == "DUPLICATE_INVOICE_ID"


async def test_a_declined_capture_is_a_failed_result(make_adapter: MakeAdapter, paypal: FakePayPal) -> None:
    sub = paypal.seed_active_subscription()
    paypal.declining.add(sub)
    result = await make_adapter().charge(
        ChargeRequest(payment_id=1, amount=2000, currency="USD", provider_subscription_id=sub), idempotency_key="d1"
    )
    assert (result.status, result.failure_code) == ("failed", "DECLINED")


async def test_a_charge_without_a_subscription_is_unsupported(make_adapter: MakeAdapter, paypal: FakePayPal) -> None:
    before = len(paypal.log)
    with pytest.raises(UnsupportedOperationError):
        await make_adapter().charge(ChargeRequest(payment_id=1, amount=100, currency="USD"), idempotency_key="n1")
    assert len(paypal.log) == before


async def test_an_id_cannot_reach_another_endpoint(make_adapter: MakeAdapter, paypal: FakePayPal) -> None:
    request = ChargeRequest(payment_id=1, amount=100, currency="USD", payment_method="../../../v1/catalogs/products")
    with pytest.raises(ProviderError):
        await make_adapter().charge(request, idempotency_key="traversal")
    assert paypal.log[-1].path == "/v1/billing/subscriptions/..%2F..%2F..%2Fv1%2Fcatalogs%2Fproducts/capture"


async def test_a_capture_accepted_without_a_transaction_is_pending(
    make_adapter: MakeAdapter, paypal: FakePayPal
) -> None:
    sub = paypal.seed_active_subscription()
    paypal.empty_captures = True
    request = ChargeRequest(payment_id=1, amount=2000, currency="USD", provider_subscription_id=sub)
    first = await make_adapter().charge(request, idempotency_key="empty-1")
    assert (first.status, first.provider_subscription_id) == ("pending", sub)
    assert (
        first.provider_payment_id
        == (await make_adapter().charge(request, idempotency_key="empty-1")).provider_payment_id
    )
    assert (
        first.provider_payment_id
        != (await make_adapter().charge(request, idempotency_key="empty-2")).provider_payment_id
    )


async def test_charge_status_reads_a_pending_capture_until_it_clears(
    make_adapter: MakeAdapter, paypal: FakePayPal
) -> None:
    adapter = make_adapter()
    cleared, bounced = paypal.seed_active_subscription(value="20.00"), paypal.seed_active_subscription(value="20.00")
    paypal.clearing |= {cleared, bounced}
    made = [
        await adapter.charge(
            ChargeRequest(payment_id=n, amount=2000, currency="USD", provider_subscription_id=sub),
            idempotency_key=f"p{n}",
        )
        for n, sub in enumerate((cleared, bounced), start=1)
    ]
    assert [charge.status for charge in made] == ["pending", "pending"]
    still = await adapter.charge_status(made[0].provider_payment_id)
    assert still is not None
    assert (still.status, still.amount, still.currency) == ("pending", 2000, "USD")
    assert paypal.log[-1].path == f"/v2/payments/captures/{made[0].provider_payment_id}"

    paypal.settle_capture(made[0].provider_payment_id, "COMPLETED")
    paypal.settle_capture(made[1].provider_payment_id, "DECLINED")
    succeeded = await adapter.charge_status(made[0].provider_payment_id)
    failed = await adapter.charge_status(made[1].provider_payment_id)
    assert succeeded is not None
    assert failed is not None
    assert succeeded.status == "succeeded"
    assert (failed.status, failed.failure_code) == ("failed", "DECLINED")


async def test_charge_status_of_an_unnamed_or_unknown_capture_is_none(
    make_adapter: MakeAdapter, paypal: FakePayPal
) -> None:
    adapter = make_adapter()
    paypal.empty_captures = True
    sub = paypal.seed_active_subscription(value="20.00")
    unnamed = await adapter.charge(
        ChargeRequest(payment_id=3, amount=2000, currency="USD", provider_subscription_id=sub), idempotency_key="u1"
    )
    asked = len(paypal.log)
    assert await adapter.charge_status(unnamed.provider_payment_id) is None
    assert len(paypal.log) == asked  # nothing to ask PayPal about
    assert await adapter.charge_status("7UNKNOWN00000000") is None
    assert paypal.log[-1].path == "/v2/payments/captures/7UNKNOWN00000000"
