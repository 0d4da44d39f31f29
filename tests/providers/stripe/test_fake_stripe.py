"""The fake's checker can fail: unknown paths, parameters and values are caught, not answered."""

from __future__ import annotations

from typing import Any

import pytest
import stripe
from billplane_stripe.client import PerCallHTTPXClient

from tests.providers.stripe.conftest import SECRET_KEY
from tests.providers.stripe.fake_stripe import objects, resources, sdk_params
from tests.providers.stripe.fake_stripe.server import FakeStripe
from tests.providers.stripe.fake_stripe.spec import stripe_spec

pytestmark = pytest.mark.anyio


def _client(fake: FakeStripe) -> stripe.StripeClient:
    return stripe.StripeClient(
        SECRET_KEY,
        base_addresses={"api": fake.url},
        max_network_retries=0,
        http_client=PerCallHTTPXClient(timeout=5),
    )


@pytest.mark.parametrize(
    ("method", "path", "form", "problem"),
    [
        ("POST", "/v1/customers", [("email", "a@example.com"), ("nickname", "x")], "nickname"),
        ("POST", "/v1/prices", [("recurring[interval]", "fortnight")], "fortnight"),
        ("POST", "/v1/prices", [("recurring[usage_kind]", "metered")], "usage_kind"),
        ("POST", "/v1/prices", [("unit_amount", "twelve")], "twelve"),
        ("POST", "/v1/subscriptions/sub_1", [("pause_collection[behavior]", "forever")], "forever"),
        ("POST", "/v1/subscriptions/sub_1", [("cancel_at_period_end", "yes")], "yes"),
        ("POST", "/v1/payment_intents", [("amount", "1"), ("items[0][price]", "x")], "items"),
        ("POST", "/v1/customers/cus_1/teleport", [], "no such operation"),
        ("PUT", "/v1/customers", [], "no such operation"),
    ],
)
def test_the_spec_check_catches(method: str, path: str, form: list[tuple[str, str]], problem: str) -> None:
    problems = stripe_spec().check(method, path, [], form)
    assert problems
    assert problem in problems[0]


def test_a_valid_request_passes() -> None:
    form = [("currency", "usd"), ("product", "prod_1"), ("unit_amount", "5"), ("recurring[interval]", "month")]
    assert stripe_spec().check("POST", "/v1/prices", [], form) == []


@pytest.mark.parametrize(
    ("typed", "form"),
    [
        (sdk_params.OPERATIONS[("POST", "/v1/billing/meters")], [("event_name", "e"), ("aggregation", "sum")]),
        (sdk_params.OPERATIONS[("POST", "/v1/billing/meters")], [("customer_mapping[type]", "by_email")]),
        (sdk_params.OPERATIONS[("POST", "/v1/billing/meter_events")], [("timestamp", "yesterday")]),
        (sdk_params.OPERATIONS[("POST", "/v1/billing/meter_events")], [("idempotency_key", "k")]),
    ],
)
def test_the_sdk_type_check_catches(typed: type, form: list[tuple[str, str]]) -> None:
    assert sdk_params.check(typed, "POST", "/v1/billing/x", form)


def test_only_declared_additions_pass_beside_the_spec(fake_stripe: FakeStripe) -> None:
    base = [("currency", "usd"), ("product", "p"), ("recurring[interval]", "month")]
    assert fake_stripe._check("POST", "/v1/prices", [], [*base, ("recurring[meter]", "mtr_1")]) == []  # noqa: SLF001
    assert fake_stripe._check("POST", "/v1/prices", [], [*base, ("recurring[meters]", "m")])  # noqa: SLF001


async def test_an_unknown_parameter_sent_over_http_is_recorded_and_refused(fake_stripe: FakeStripe) -> None:
    client = _client(fake_stripe)
    with pytest.raises(stripe.InvalidRequestError, match="favourite_colour"):
        await client.v1.customers.create_async({"favourite_colour": "green"})  # type: ignore[arg-type]
    assert fake_stripe.violations == ["POST /v1/customers: unknown or invalid parameter favourite_colour='green'"]
    assert not fake_stripe.store.customers
    fake_stripe.violations.clear()  # caught as intended: the fixture's own check must not fail this test


async def test_an_unimplemented_operation_is_a_violation(fake_stripe: FakeStripe) -> None:
    client = _client(fake_stripe)
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.coupons.create_async({"percent_off": 10.0})
    assert fake_stripe.violations == ["the fake Stripe does not implement POST /v1/coupons"]
    fake_stripe.violations.clear()


def _stored_refunds(fake: FakeStripe, count: int) -> None:
    """``count`` refunds ``re_0``... of one PaymentIntent, one a second apart from second 1000."""
    for second in range(count):
        refund = objects.fixture(
            "refund", id=f"re_{second}", created=1000 + second, payment_intent="pi_1", charge="ch_1", metadata={}
        )
        fake.store.refunds[refund["id"]] = refund


async def _listed_ids(fake: FakeStripe, params: dict[str, Any]) -> tuple[list[str], bool]:
    listed = await _client(fake).v1.refunds.list_async(params)  # type: ignore[arg-type]
    return [refund.id for refund in listed.data], listed.has_more


async def test_refunds_are_listed_newest_first_and_paged_both_ways(fake_stripe: FakeStripe) -> None:
    _stored_refunds(fake_stripe, 5)
    assert await _listed_ids(fake_stripe, {"payment_intent": "pi_1", "limit": 2}) == (["re_4", "re_3"], True)
    assert await _listed_ids(fake_stripe, {"charge": "ch_1", "limit": 2, "starting_after": "re_3"}) == (
        ["re_2", "re_1"],
        True,
    )
    assert await _listed_ids(fake_stripe, {"limit": 2, "starting_after": "re_1"}) == (["re_0"], False)
    assert await _listed_ids(fake_stripe, {"limit": 2, "ending_before": "re_1"}) == (["re_3", "re_2"], True)
    assert await _listed_ids(fake_stripe, {"limit": 2, "ending_before": "re_3"}) == (["re_4"], False)
    assert await _listed_ids(fake_stripe, {"payment_intent": "pi_2"}) == ([], False)
    assert await _listed_ids(fake_stripe, {"charge": "ch_2"}) == ([], False)


@pytest.mark.parametrize(
    ("created", "expected"),
    [
        ({"gte": 1003}, ["re_4", "re_3"]),
        ({"gt": 1003}, ["re_4"]),
        ({"lte": 1001}, ["re_1", "re_0"]),
        ({"lt": 1001}, ["re_0"]),
        ({"gt": 1000, "lt": 1003}, ["re_2", "re_1"]),
        (1002, ["re_2"]),
    ],
)
async def test_refunds_are_filtered_by_created(fake_stripe: FakeStripe, created: object, expected: list[str]) -> None:
    _stored_refunds(fake_stripe, 5)
    assert await _listed_ids(fake_stripe, {"created": created}) == (expected, False)


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 101}, {"starting_after": "re_1", "ending_before": "re_3"}]
)  # fmt: skip
async def test_a_list_outside_stripes_rules_is_refused(fake_stripe: FakeStripe, params: dict[str, Any]) -> None:
    _stored_refunds(fake_stripe, 5)
    with pytest.raises(stripe.InvalidRequestError):
        await _listed_ids(fake_stripe, params)


async def test_a_charge_is_served_from_the_payment_intent_that_made_it(fake_stripe: FakeStripe) -> None:
    client = _client(fake_stripe)
    intent = await client.v1.payment_intents.create_async(
        {"amount": 4200, "currency": "eur", "payment_method": "pm_card_visa", "confirm": True}
    )
    assert isinstance(intent.latest_charge, str)
    refund = await client.v1.refunds.create_async({"payment_intent": intent.id, "amount": 1000})

    charge = (await client.v1.charges.retrieve_async(intent.latest_charge)).to_dict()

    assert {key: charge[key] for key in ("id", "object", "amount", "currency", "payment_intent", "status")} == {
        "id": intent.latest_charge,
        "object": "charge",
        "amount": 4200,
        "currency": "eur",
        "payment_intent": intent.id,
        "status": "succeeded",
    }
    assert (charge["created"], charge["amount_refunded"], charge["refunded"]) == (intent.created, 1000, False)
    assert [r["id"] for r in charge["refunds"]["data"]] == [refund.id]
    assert fake_stripe.last("GET", "/v1/charges/{charge}").status == 200


async def test_a_bank_debit_charge_is_pending_until_it_clears(fake_stripe: FakeStripe) -> None:
    client = _client(fake_stripe)
    intent = await client.v1.payment_intents.create_async(
        {"amount": 4200, "currency": "usd", "payment_method": "pm_usBankAccount", "confirm": True}
    )
    assert isinstance(intent.latest_charge, str)
    pending = await client.v1.charges.retrieve_async(intent.latest_charge)
    assert (pending.id[:3], pending.status, pending.paid) == ("py_", "pending", False)

    resources.settle_processing(fake_stripe.store, intent.id, succeeded=False)

    failed = await client.v1.charges.retrieve_async(intent.latest_charge)
    assert (failed.status, failed.failure_code) == ("failed", "payment_method_not_available")


async def test_an_unknown_charge_is_resource_missing(fake_stripe: FakeStripe) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await _client(fake_stripe).v1.charges.retrieve_async("ch_unknown")
    assert (caught.value.http_status, caught.value.code) == (404, "resource_missing")
    assert "ch_unknown" in str(caught.value.user_message)
