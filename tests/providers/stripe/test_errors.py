"""Stripe's failures as billplane's errors: refused keys, retryable outages and timeouts."""

from __future__ import annotations

import pytest
import stripe
from billplane_stripe import errors
from billplane_stripe.adapter import StripeAdapter

from billplane.plugins import (
    CustomerData,
    InvalidCredentialsError,
    ProviderError,
    RetryableProviderError,
)
from tests.providers.stripe import helpers
from tests.providers.stripe.conftest import SECRET_KEY, MakeAdapter
from tests.providers.stripe.fake_stripe.server import FakeStripe

pytestmark = pytest.mark.anyio
REVOKED = "sk_test_revoked_key_0000000000001234"


async def test_good_key_passes_the_check(stripe_adapter: StripeAdapter, fake_stripe: FakeStripe) -> None:
    await stripe_adapter.check_credentials()
    assert [(r.method, r.path) for r in fake_stripe.requests] == [("GET", "/v1/balance")]


async def test_revoked_key_fails_the_check_with_stripes_message(make_adapter: MakeAdapter) -> None:
    with pytest.raises(InvalidCredentialsError) as caught:
        await make_adapter(secret_key=REVOKED).check_credentials()
    assert caught.value.message.startswith("Invalid API Key provided: sk_test_")
    assert REVOKED not in str(caught.value)


@pytest.mark.parametrize(
    ("key", "mode"),
    [("sk_test_abc", "live"), ("sk_live_abc", "test"), ("pk_test_abc", "test"), ("sk_test_", "test"), ("", "live")],
)
async def test_key_of_the_wrong_mode_is_refused_without_a_call(
    make_adapter: MakeAdapter, fake_stripe: FakeStripe, key: str, mode: str
) -> None:
    with pytest.raises(InvalidCredentialsError, match=f"{mode}-mode") as caught:
        await make_adapter(secret_key=key, mode=mode).check_credentials()
    assert caught.value.code == "key_format"
    assert not fake_stripe.requests
    if len(key) > len("sk_test_"):
        assert key not in str(caught.value)


@pytest.mark.parametrize("key", ["rk_test_restricted", "sk_test_x"])
async def test_restricted_keys_are_allowed(make_adapter: MakeAdapter, fake_stripe: FakeStripe, key: str) -> None:
    fake_stripe.api_keys.add(key)
    try:
        await make_adapter(secret_key=key).check_credentials()
    finally:
        fake_stripe.api_keys.discard(key)


async def test_a_key_revoked_later_fails_an_operation_without_retry(make_adapter: MakeAdapter) -> None:
    with pytest.raises(ProviderError) as caught:
        await helpers.customer(make_adapter(secret_key=REVOKED))
    assert not isinstance(caught.value, RetryableProviderError | InvalidCredentialsError)


async def test_429_is_retryable_with_retry_after(stripe_adapter: StripeAdapter, fake_stripe: FakeStripe) -> None:
    fake_stripe.fail_next(429, retry_after="3")
    with pytest.raises(RetryableProviderError) as caught:
        await helpers.customer(stripe_adapter)
    assert caught.value.retry_after == 3.0
    assert caught.value.code == "rate_limit"


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_is_retryable_and_not_retried_by_the_sdk(
    stripe_adapter: StripeAdapter, fake_stripe: FakeStripe, status: int
) -> None:
    fake_stripe.fail_next(status)
    with pytest.raises(RetryableProviderError) as caught:
        await helpers.customer(stripe_adapter)
    assert caught.value.retry_after is None
    assert len(fake_stripe.requests) == 1  # billplane's sync engine retries, with backoff


async def test_timeout_is_retryable_and_the_retry_is_not_a_second_write(
    make_adapter: MakeAdapter, fake_stripe: FakeStripe
) -> None:
    adapter = make_adapter(timeout=0.2)
    fake_stripe.delay_next(0.6, path="/v1/customers")
    data = CustomerData(customer_id=5, email=None, name=None)
    key = helpers.key()
    with pytest.raises(RetryableProviderError):
        await adapter.ensure_customer(data, idempotency_key=key)
    again = await adapter.ensure_customer(data, idempotency_key=key)
    # Stripe finished the first call after the client gave up; the retry replays it.
    assert list(fake_stripe.store.customers) == [again.provider_id]


async def test_unreachable_stripe_is_retryable() -> None:
    with pytest.raises(RetryableProviderError):
        await helpers.unreachable(SECRET_KEY).check_credentials()


async def test_other_refusals_carry_stripes_code(stripe_adapter: StripeAdapter) -> None:
    with pytest.raises(ProviderError) as caught:
        await stripe_adapter.update_customer(
            "cus_missing", CustomerData(customer_id=1, email=None, name=None), idempotency_key=helpers.key()
        )
    assert type(caught.value) is ProviderError
    assert caught.value.code == "resource_missing"


def test_retry_after_that_is_not_a_number_is_ignored() -> None:
    error = stripe.RateLimitError("slow down", headers={"Retry-After": "soon"})
    translated = errors.translate(error)
    assert isinstance(translated, RetryableProviderError)
    assert translated.retry_after is None
