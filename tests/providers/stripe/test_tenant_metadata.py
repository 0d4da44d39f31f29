"""One Stripe account may serve several billplane tenants, whose payment and refund ids overlap:
the PaymentIntents and Refunds billplane makes carry the tenant's id, and one carrying another
tenant's id is never taken for this tenant's, even with no customer to tell them apart. One made
before the tenant id was written is matched as it was before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from billplane_stripe import webhooks
from billplane_stripe.adapter import StripeAdapter
from billplane_stripe.credentials import StripeCredentials
from billplane_stripe.payments import (
    charge_from_payment_intent,
    is_charge_of,
    matching_refund,
    payment_intent_params,
    refund_params,
    refund_result,
)

from billplane.plugins import ChargeRequest, RefundRequest
from tests.providers.stripe import helpers
from tests.providers.stripe.conftest import TENANT_ID, WEBHOOK_SECRET, MakeContext
from tests.providers.stripe.fake_stripe import events, resources
from tests.providers.stripe.fake_stripe.server import FakeStripe

OTHER_TENANT = TENANT_ID + 1
CHARGE = ChargeRequest(payment_id=40, amount=4200, currency="EUR")  # no customer: only the ids tell
REFUND = RefundRequest(refund_id=4, provider_payment_id="pi_1", amount=1000, currency="EUR")
OURS = str(TENANT_ID)
THEIRS = str(OTHER_TENANT)


def _intent(**metadata: str) -> dict[str, Any]:
    return {
        "id": "pi_1",
        "object": "payment_intent",
        "status": "succeeded",
        "amount": 4200,
        "currency": "eur",
        "customer": None,
        "created": 1,
        "metadata": {"billplane_payment_id": "40", **metadata},
    }


def _refund(**metadata: str) -> dict[str, Any]:
    return {
        "id": "re_1",
        "object": "refund",
        "status": "succeeded",
        "amount": 1000,
        "currency": "eur",
        "payment_intent": "pi_1",
        "created": 1,
        "metadata": {"billplane_refund_id": "4", **metadata},
    }


def test_payment_intents_and_refunds_carry_the_tenant() -> None:
    sent = payment_intent_params(CHARGE, "pm_1", None, tenant_id=TENANT_ID)
    assert sent["metadata"] == {"billplane_payment_id": "40", "billplane_tenant_id": OURS}
    assert refund_params(REFUND, tenant_id=TENANT_ID)["metadata"] == {
        "billplane_refund_id": "4",
        "billplane_tenant_id": OURS,
    }


# Whose the metadata says the object is, and whether it is taken for this tenant's.
WRITTEN = [
    pytest.param({"billplane_tenant_id": OURS}, "ours", id="ours"),
    pytest.param({"billplane_tenant_id": THEIRS}, "not ours", id="another tenant's"),
    # Made before billplane wrote the tenant: the other fields decide, as they did.
    pytest.param({}, "ours", id="unwritten"),
]


@pytest.mark.parametrize(("metadata", "verdict"), WRITTEN)
def test_a_payment_intent_of_another_tenant_is_not_the_charge(metadata: dict[str, str], verdict: str) -> None:
    assert is_charge_of(_intent(**metadata), CHARGE, tenant_id=TENANT_ID) is (verdict == "ours")


@pytest.mark.parametrize(("metadata", "verdict"), WRITTEN)
def test_a_refund_of_another_tenant_is_not_the_refund(metadata: dict[str, str], verdict: str) -> None:
    found = matching_refund([_refund(**metadata)], REFUND, tenant_id=TENANT_ID)
    assert (found is not None) is (verdict == "ours")


@pytest.mark.parametrize(("metadata", "verdict"), WRITTEN)
def test_what_stripe_reports_names_billplanes_ids_only_for_this_tenant(metadata: dict[str, str], verdict: str) -> None:
    # A webhook of a shared account reaches every tenant's endpoint: another tenant's payment 40
    # must not settle this tenant's payment 40 whose answer was lost.
    named = (40, 4) if verdict == "ours" else (None, None)
    assert charge_from_payment_intent(_intent(**metadata), tenant_id=TENANT_ID).billplane_payment_id == named[0]
    assert refund_result(_refund(**metadata), tenant_id=TENANT_ID).billplane_refund_id == named[1]
    created = int(datetime.now(UTC).timestamp())
    (paid,) = webhooks.normalize(
        events.event("payment_intent.succeeded", _intent(**metadata), created=created), tenant_id=TENANT_ID
    )
    (refunded,) = webhooks.normalize(
        events.event("refund.updated", _refund(**metadata), created=created), tenant_id=TENANT_ID
    )
    assert paid.payment is not None
    assert refunded.refund is not None
    assert (paid.payment.billplane_payment_id, refunded.refund.billplane_refund_id) == named


# -- through the adapter, two tenants on one Stripe account -------------------------------------


def _adapter_of(make_context: MakeContext, tenant_id: int) -> StripeAdapter:
    context = msgspec.structs.replace(make_context(), tenant_id=tenant_id)
    assert isinstance(context.credentials, StripeCredentials)
    return StripeAdapter(context, context.credentials)


def _since() -> datetime:
    return datetime.now(UTC) - timedelta(minutes=10)


@pytest.mark.anyio
async def test_the_adapter_writes_its_tenant_into_payment_intents_and_refunds(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    charge = msgspec.structs.replace(CHARGE, payment_method=resources.SUCCEEDS)
    made = await stripe_adapter.charge(charge, idempotency_key=helpers.key())
    assert fake_stripe.last("POST", "/v1/payment_intents").params["metadata"]["billplane_tenant_id"] == OURS
    refund = msgspec.structs.replace(REFUND, provider_payment_id=made.provider_payment_id)
    await stripe_adapter.refund(refund, idempotency_key=helpers.key())
    assert fake_stripe.last("POST", "/v1/refunds").params["metadata"]["billplane_tenant_id"] == OURS


@pytest.mark.anyio
async def test_another_tenants_charge_without_a_customer_is_not_found(
    make_context: MakeContext, fake_stripe: FakeStripe
) -> None:
    ours, theirs = _adapter_of(make_context, TENANT_ID), _adapter_of(make_context, OTHER_TENANT)
    charge = msgspec.structs.replace(CHARGE, payment_method=resources.SUCCEEDS)
    await theirs.charge(charge, idempotency_key=helpers.key())  # their payment 40: same amount, no customer
    # Our payment 40 never reached Stripe: nothing is ours, so dunning may charge it again.
    assert await ours.find_payment(charge, idempotency_key=helpers.key(), created_after=_since()) is None
    assert await theirs.find_payment(charge, idempotency_key=helpers.key(), created_after=_since()) is not None


@pytest.mark.anyio
async def test_a_webhook_of_another_tenants_payment_does_not_name_ours(
    make_context: MakeContext, fake_stripe: FakeStripe
) -> None:
    ours, theirs = _adapter_of(make_context, TENANT_ID), _adapter_of(make_context, OTHER_TENANT)
    charge = msgspec.structs.replace(CHARGE, payment_method=resources.SUCCEEDS)
    made = await theirs.charge(charge, idempotency_key=helpers.key())
    intent = fake_stripe.store.payment_intents[made.provider_payment_id]
    at = datetime.now(UTC)
    headers, body = events.sign(
        events.event("payment_intent.succeeded", intent, created=int(at.timestamp())), [WEBHOOK_SECRET], at
    )
    headers = {name.lower(): value for name, value in headers.items()}
    (mine,) = await ours.parse_webhook(headers, body)
    (their,) = await theirs.parse_webhook(headers, body)
    assert mine.payment is not None
    assert their.payment is not None
    assert (mine.payment.billplane_payment_id, their.payment.billplane_payment_id) == (None, 40)
