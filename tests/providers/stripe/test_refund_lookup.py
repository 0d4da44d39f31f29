"""find_refund: a refund whose answer was lost is found among its payment's refunds (GET /v1/refunds,
never Search) by the billplane refund id in its metadata; a refund Stripe never made is certainly
None; an unreachable Stripe, or a payment whose refunds cannot be listed, is an error, never None."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from billplane_stripe import payments
from billplane_stripe.adapter import StripeAdapter

from billplane.plugins import ChargeRequest, ProviderError, RefundRequest, RefundResult, RetryableProviderError
from tests.providers.stripe import helpers
from tests.providers.stripe.conftest import SECRET_KEY, MakeAdapter
from tests.providers.stripe.fake_stripe import refunds, resources
from tests.providers.stripe.fake_stripe.server import FakeStripe, Recorded

pytestmark = pytest.mark.anyio


def _since() -> datetime:
    return datetime.now(UTC) - timedelta(minutes=10)


def _refund(payment: str, refund_id: int = 4, amount: int = 1000) -> RefundRequest:
    return RefundRequest(refund_id=refund_id, provider_payment_id=payment, amount=amount, currency="EUR")


async def _paid(adapter: StripeAdapter, method: str = resources.SUCCEEDS) -> str:
    """A 42.00 EUR PaymentIntent paid with ``method``."""
    charge = ChargeRequest(payment_id=31, amount=4200, currency="EUR", payment_method=method)
    return (await adapter.charge(charge, idempotency_key=helpers.key())).provider_payment_id


async def _find(adapter: StripeAdapter, request: RefundRequest, since: datetime | None = None) -> RefundResult | None:
    return await adapter.find_refund(request, idempotency_key=helpers.key(), created_after=since or _since())


def _lists(fake: FakeStripe) -> list[Recorded]:
    return [r for r in fake.requests if r.method == "GET" and r.template == "/v1/refunds"]


async def test_a_refund_whose_answer_was_lost_is_found_with_its_status(
    make_adapter: MakeAdapter, stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    payment = await _paid(stripe_adapter)
    request = _refund(payment)
    key = helpers.key()
    fake_stripe.delay_next(0.6, path="/v1/refunds")  # Stripe refunds after the client has given up
    with pytest.raises(RetryableProviderError):
        await make_adapter(timeout=0.2).refund(request, idempotency_key=key)
    with anyio.fail_after(5):
        # The fake refunds in its server thread, which no anyio.Event of this task can hear.
        while not fake_stripe.store.refunds:  # noqa: ASYNC110
            await anyio.sleep(0.05)
    (made,) = fake_stripe.store.refunds.values()

    found = await stripe_adapter.find_refund(request, idempotency_key=key, created_after=_since())

    assert found == RefundResult(
        provider_refund_id=made["id"],
        status="succeeded",
        provider_payment_id=payment,
        amount=1000,
        currency="EUR",
        billplane_refund_id=4,
    )
    assert not [r for r in fake_stripe.requests if r.path.endswith("/search")]  # eventually consistent: never


async def test_a_pending_refund_is_found_as_it_stands_now(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    request = _refund(await _paid(stripe_adapter, refunds.PENDING_REFUND))
    made = await stripe_adapter.refund(request, idempotency_key=helpers.key())
    found = await _find(stripe_adapter, request)
    assert found is not None
    assert found.status == "pending"

    refunds.settle_refund(fake_stripe.store, made.provider_refund_id, "failed", failure_reason="lost_or_stolen_card")

    failed = await _find(stripe_adapter, request)
    assert failed is not None
    assert (failed.provider_refund_id, failed.status, failed.failure_message) == (
        made.provider_refund_id,
        "failed",
        "lost_or_stolen_card",
    )


async def test_a_refund_never_made_is_none(stripe_adapter: StripeAdapter, fake_stripe: FakeStripe) -> None:
    payment = await _paid(stripe_adapter)
    await stripe_adapter.refund(_refund(payment, refund_id=4), idempotency_key=helpers.key())
    elsewhere = await _paid(stripe_adapter)
    await stripe_adapter.refund(_refund(elsewhere, refund_id=5), idempotency_key=helpers.key())  # not this payment's

    assert await _find(stripe_adapter, _refund(payment, refund_id=5)) is None
    assert _lists(fake_stripe)[-1].params["payment_intent"] == payment


async def test_only_the_refund_carrying_the_billplane_refund_id_matches(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    payment = await _paid(stripe_adapter)
    ours = await stripe_adapter.refund(_refund(payment, refund_id=4), idempotency_key=helpers.key())
    await stripe_adapter.refund(_refund(payment, refund_id=40), idempotency_key=helpers.key())  # "40" starts with "4"
    by_hand = await stripe_adapter.refund(_refund(payment, refund_id=6), idempotency_key=helpers.key())
    fake_stripe.store.refunds[by_hand.provider_refund_id]["metadata"] = {}  # as if refunded in the Dashboard

    found = await _find(stripe_adapter, _refund(payment, refund_id=4))

    assert found is not None
    assert (found.provider_refund_id, found.billplane_refund_id) == (ours.provider_refund_id, 4)


async def _sent_twice(stripe_adapter: StripeAdapter, fake_stripe: FakeStripe) -> tuple[RefundRequest, str, str]:
    """A refund sent twice under two keys (billplane never does; someone did by hand): the request
    and the two refunds' ids, the first a minute older than the second."""
    request = _refund(await _paid(stripe_adapter), amount=100)
    first = await stripe_adapter.refund(request, idempotency_key=helpers.key())
    again = await stripe_adapter.refund(request, idempotency_key=helpers.key())
    fake_stripe.store.refunds[first.provider_refund_id]["created"] -= 60
    return request, first.provider_refund_id, again.provider_refund_id


async def test_of_several_matches_the_one_not_failed_is_the_answer_not_a_newer_failure(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    request, first, again = await _sent_twice(stripe_adapter, fake_stripe)
    refunds.settle_refund(fake_stripe.store, again, "failed")

    found = await _find(stripe_adapter, request)

    assert found is not None
    assert (found.provider_refund_id, found.status) == (first, "succeeded")  # its money went back


async def test_of_several_failed_matches_the_newest_is_the_answer(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    request, first, again = await _sent_twice(stripe_adapter, fake_stripe)
    refunds.settle_refund(fake_stripe.store, first, "failed")
    refunds.settle_refund(fake_stripe.store, again, "failed", failure_reason="lost_or_stolen_card")

    found = await _find(stripe_adapter, request)

    assert found is not None
    assert (found.provider_refund_id, found.status, found.failure_message) == (again, "failed", "lost_or_stolen_card")


async def test_several_matches_not_failed_are_an_error_naming_them(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    request, first, again = await _sent_twice(stripe_adapter, fake_stripe)

    with pytest.raises(ProviderError) as caught:
        await _find(stripe_adapter, request)

    assert type(caught.value) is ProviderError  # not retryable: the tenant must look
    assert caught.value.code == "refund_lookup_ambiguous"
    assert first in caught.value.message
    assert again in caught.value.message


async def test_the_payments_refunds_are_paged_through(stripe_adapter: StripeAdapter, fake_stripe: FakeStripe) -> None:
    payment = await _paid(stripe_adapter)
    ours = await stripe_adapter.refund(_refund(payment, refund_id=4, amount=1), idempotency_key=helpers.key())
    others = [  # newer than ours: it is on the second page
        await stripe_adapter.refund(_refund(payment, refund_id=1000 + number, amount=1), idempotency_key=helpers.key())
        for number in range(payments.REFUND_PAGE)
    ]

    found = await _find(stripe_adapter, _refund(payment, refund_id=4, amount=1))

    assert found is not None
    assert found.provider_refund_id == ours.provider_refund_id
    first, second = _lists(fake_stripe)
    assert "starting_after" not in first.params
    assert second.params["starting_after"] == others[0].provider_refund_id  # page one's last (oldest) refund
    assert (second.params["payment_intent"], second.params["limit"]) == (payment, "100")


async def test_a_charge_is_listed_by_charge(stripe_adapter: StripeAdapter, fake_stripe: FakeStripe) -> None:
    intent = await _paid(stripe_adapter)
    charge = fake_stripe.store.payment_intents[intent]["latest_charge"]
    assert charge.startswith("ch_")
    made = await stripe_adapter.refund(_refund(charge), idempotency_key=helpers.key())

    found = await _find(stripe_adapter, _refund(charge))

    assert found is not None
    assert found.provider_refund_id == made.provider_refund_id
    assert found.provider_payment_id == charge  # the payment billplane named, not its PaymentIntent
    listed = _lists(fake_stripe)[-1].params
    assert (listed["charge"], "payment_intent" in listed) == (charge, False)
    assert fake_stripe.last("GET", "/v1/charges/{charge}").path == f"/v1/charges/{charge}"


async def test_a_bank_debit_charge_is_retrieved_as_a_charge(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    intent = await _paid(stripe_adapter, resources.PROCESSING)
    charge = fake_stripe.store.payment_intents[intent]["latest_charge"]
    assert charge.startswith("py_")

    assert await _find(stripe_adapter, _refund(charge)) is None

    assert [r.template for r in fake_stripe.requests[-2:]] == ["/v1/charges/{charge}", "/v1/refunds"]
    assert _lists(fake_stripe)[-1].params["charge"] == charge


@pytest.mark.parametrize("payment", ["pi_unknown", "ch_unknown", "py_unknown"])
async def test_a_payment_stripe_does_not_know_is_an_error_not_none(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe, payment: str
) -> None:
    """The keys may now be another Stripe account's, whose list of this payment's refunds is empty."""
    await _paid(stripe_adapter)  # a payment the account does know, of no concern here

    with pytest.raises(ProviderError) as caught:
        await _find(stripe_adapter, _refund(payment))

    assert type(caught.value) is ProviderError  # not retryable: asking again will not help
    assert caught.value.code == "refund_lookup_unknown_payment"
    assert [(r.path, r.status) for r in fake_stripe.requests if r.method == "GET"] == [
        (f"/v1/{'payment_intents' if payment.startswith('pi_') else 'charges'}/{payment}", 404)
    ]
    assert not _lists(fake_stripe)


@pytest.mark.parametrize("status", [429, 500, 503])
@pytest.mark.parametrize("template", ["/v1/payment_intents/{intent}", "/v1/charges/{charge}"])
async def test_a_failing_retrieve_is_retryable_not_none(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe, status: int, template: str
) -> None:
    payment = await _paid(stripe_adapter)
    if "charge" in template:
        payment = fake_stripe.store.payment_intents[payment]["latest_charge"]
    fake_stripe.fail_next(status, path=template.partition("{")[0])
    with pytest.raises(RetryableProviderError):
        await _find(stripe_adapter, _refund(payment))
    assert fake_stripe.last("GET", template).status == status
    assert not _lists(fake_stripe)


async def test_the_list_is_bounded_by_created_after(stripe_adapter: StripeAdapter, fake_stripe: FakeStripe) -> None:
    request = _refund(await _paid(stripe_adapter))
    await stripe_adapter.refund(request, idempotency_key=helpers.key())
    since = _since()

    assert await _find(stripe_adapter, request, since) is not None
    assert _lists(fake_stripe)[-1].params["created"] == {"gte": str(int(since.timestamp()))}
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert await _find(stripe_adapter, request, later) is None  # made before the window: not listed


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_a_failing_stripe_is_retryable_not_none(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe, status: int
) -> None:
    payment = await _paid(stripe_adapter)
    fake_stripe.fail_next(status, path="/v1/refunds")
    with pytest.raises(RetryableProviderError):
        await _find(stripe_adapter, _refund(payment))
    assert [r.status for r in _lists(fake_stripe)] == [status]


async def test_a_failure_on_a_later_page_is_retryable_not_a_partial_answer(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe
) -> None:
    payment = await _paid(stripe_adapter)
    for number in range(payments.REFUND_PAGE + 1):
        await stripe_adapter.refund(_refund(payment, refund_id=1000 + number, amount=1), idempotency_key=helpers.key())
    fake_stripe.fail_next(503, path="/v1/refunds", skip=1)  # page one answers, page two does not
    with pytest.raises(RetryableProviderError):
        await _find(stripe_adapter, _refund(payment, refund_id=4))
    assert [r.status for r in _lists(fake_stripe)] == [200, 503]


async def test_an_unreachable_stripe_is_retryable() -> None:
    with pytest.raises(RetryableProviderError):
        await _find(helpers.unreachable(SECRET_KEY), _refund("pi_123"))


@pytest.mark.parametrize("payment", ["in_123", "declined:test-key", "seti_123", ""])
async def test_a_payment_whose_refunds_cannot_be_listed_is_an_error_not_none(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe, payment: str
) -> None:
    with pytest.raises(ProviderError) as caught:
        await _find(stripe_adapter, _refund(payment))
    assert type(caught.value) is ProviderError  # not retryable: asking again will not help
    assert caught.value.code == "refund_lookup_unsupported"
    assert not fake_stripe.requests


# -- the pure parts ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payment", "target"), [("pi_1", "payment_intent"), ("ch_1", "charge"), ("py_1", "charge")]
)  # fmt: skip
def test_the_list_names_the_payment_as_refund_names_it(payment: str, target: str) -> None:
    since = datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)
    params = payments.refund_list_params(_refund(payment), since)
    assert params == {target: payment, "created": {"gte": int(since.timestamp())}, "limit": 100}
    assert target in payments.refund_params(_refund(payment))


def _listed(refund_id: str, created: int, billplane_id: str | None = "4", status: str = "succeeded") -> dict[str, Any]:
    metadata = {} if billplane_id is None else {"billplane_refund_id": billplane_id}
    return {"id": refund_id, "object": "refund", "status": status, "created": created, "metadata": metadata}


def _matching(listed: list[dict[str, Any]]) -> str | None:
    """The id ``matching_refund`` answers, whichever order Stripe listed ``listed`` in."""
    answers = {payments.matching_refund(order, _refund("pi_1")) for order in (listed, listed[::-1])}
    assert len(answers) == 1, answers
    (found,) = answers
    return None if found is None else found.provider_refund_id


@pytest.mark.parametrize("failure", ["failed", "canceled"])
@pytest.mark.parametrize("standing", ["succeeded", "pending", "requires_action"])
def test_the_one_match_not_failed_wins_over_newer_failures(standing: str, failure: str) -> None:
    listed = [
        _listed("re_failed_newest", 300, status=failure),
        _listed("re_standing", 200, status=standing),
        _listed("re_failed_old", 100, status=failure),
        _listed("re_other", 400, "5"),  # another refund's, not failed: no ambiguity
    ]
    assert _matching(listed) == "re_standing"


def test_of_failed_matches_only_the_newest_wins() -> None:
    listed = [_listed("re_old", 100, status="failed"), _listed("re_new", 200, status="canceled")]
    assert _matching([*listed, _listed("re_newer_other", 300, "5", status="failed")]) == "re_new"


@pytest.mark.parametrize(
    ("one", "other"), [("succeeded", "succeeded"), ("succeeded", "pending"), ("pending", "requires_action")]
)
def test_two_matches_not_failed_are_ambiguous(one: str, other: str) -> None:
    listed = [
        _listed("re_one", 100, status=one),
        _listed("re_other", 200, status=other),
        _listed("re_x", 50, status="failed"),
    ]
    with pytest.raises(ProviderError) as caught:
        payments.matching_refund(listed, _refund("pi_1"))
    assert type(caught.value) is ProviderError
    assert caught.value.code == "refund_lookup_ambiguous"
    assert "re_one" in caught.value.message
    assert "re_other" in caught.value.message
    assert "re_x" not in caught.value.message


def test_no_match_is_none() -> None:
    assert _matching([_listed("re_x", 1, None), _listed("re_y", 1, "04"), _listed("re_z", 1, "40")]) is None
    assert _matching([]) is None
