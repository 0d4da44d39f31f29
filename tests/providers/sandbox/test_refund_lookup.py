"""find_refund: the sandbox answers from the refunds it made (its ledger), and the payments of
``pm_sandbox_refund_answer_lost`` have every refund made with its answer lost."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Protocol, cast

import pytest
from billplane_sandbox import ledger, payment_methods

from billplane.plugins import (
    ChargeRequest,
    InvalidCredentialsError,
    ProviderAdapter,
    ProviderError,
    RefundLookupAdapter,
    RefundRequest,
    RefundStatusAdapter,
    RetryableProviderError,
)
from tests.providers.sandbox.conftest import MakeAdapter

pytestmark = pytest.mark.anyio


class LookupAdapter(ProviderAdapter, RefundLookupAdapter, Protocol):
    """An adapter with the refund_lookup capability: both protocols."""


def _lookup(make_adapter: MakeAdapter, **options: object) -> LookupAdapter:
    adapter = make_adapter(**options)
    assert isinstance(adapter, RefundLookupAdapter)
    return cast("LookupAdapter", adapter)


def _since() -> datetime:
    return datetime.now(UTC) - timedelta(minutes=10)


def _new_id() -> int:
    # Refund ids of this test only: the ledger is shared by the whole process.
    return 10**9 + secrets.randbelow(10**9)


async def _refund_of(adapter: LookupAdapter, token: str) -> RefundRequest:
    """A refund of 300 of a new payment of 700 charged with ``token``, not yet sent."""
    charge = ChargeRequest(payment_id=_new_id(), amount=700, currency="USD", payment_method=token)
    paid = await adapter.charge(charge, idempotency_key=f"k-charge-{charge.payment_id}")
    return RefundRequest(refund_id=_new_id(), provider_payment_id=paid.provider_payment_id, amount=300, currency="USD")


async def test_a_refund_whose_answer_was_lost_is_found_succeeded(make_adapter: MakeAdapter) -> None:
    adapter = _lookup(make_adapter)
    request = await _refund_of(adapter, payment_methods.REFUND_ANSWER_LOST)
    for _ in range(2):  # a retry with the same key is the same refund, and its answer is lost again
        with pytest.raises(RetryableProviderError):
            await adapter.refund(request, idempotency_key="k-lost")
    found = await adapter.find_refund(request, idempotency_key="k-lost", created_after=_since())
    assert found is not None
    assert (found.status, found.provider_refund_id.startswith("sbx_re_")) == ("succeeded", True)
    assert isinstance(adapter, RefundStatusAdapter)
    assert await adapter.refund_status(found.provider_refund_id) == found


async def test_a_refund_made_is_found_and_one_never_sent_is_not(make_adapter: MakeAdapter) -> None:
    adapter = _lookup(make_adapter)
    request = await _refund_of(adapter, payment_methods.SUCCEEDS)
    made = await adapter.refund(request, idempotency_key="k-made")
    assert await adapter.find_refund(request, idempotency_key="k-made", created_after=_since()) == made
    never = RefundRequest(
        refund_id=_new_id(), provider_payment_id=request.provider_payment_id, amount=300, currency="USD"
    )
    assert await adapter.find_refund(never, idempotency_key="k-never", created_after=_since()) is None


async def test_another_process_finds_only_refunds_whose_payment_says_they_were_made(
    make_adapter: MakeAdapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter = _lookup(make_adapter)
    lost = await _refund_of(adapter, payment_methods.REFUND_ANSWER_LOST)
    with pytest.raises(RetryableProviderError):
        await adapter.refund(lost, idempotency_key="k-elsewhere")
    made = await adapter.find_refund(lost, idempotency_key="k-elsewhere", created_after=_since())
    plain = await _refund_of(adapter, payment_methods.SUCCEEDS)
    await adapter.refund(plain, idempotency_key="k-plain")
    # A worker in another process: its ledger never saw either refund.
    monkeypatch.setattr("billplane_sandbox.adapter.REFUNDS", ledger.Ledger[ledger.Refund]())
    assert await adapter.find_refund(lost, idempotency_key="k-elsewhere", created_after=_since()) == made
    assert await adapter.find_refund(plain, idempotency_key="k-plain", created_after=_since()) is None


async def test_only_the_accounts_own_refunds_made_since_then_are_found(make_adapter: MakeAdapter) -> None:
    mine, other = _lookup(make_adapter, account_id=41), _lookup(make_adapter, account_id=42)
    request = await _refund_of(mine, payment_methods.SUCCEEDS)
    await mine.refund(request, idempotency_key="k-mine")
    with pytest.raises(ProviderError):  # the payment is not the other account's
        await other.find_refund(request, idempotency_key="k-mine", created_after=_since())
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert await mine.find_refund(request, idempotency_key="k-mine", created_after=later) is None
    assert await mine.find_refund(request, idempotency_key="k-mine", created_after=_since()) is not None


async def test_a_refused_refund_was_not_made(make_adapter: MakeAdapter) -> None:
    adapter = _lookup(make_adapter)
    request = await _refund_of(adapter, payment_methods.SUCCEEDS)
    too_much = RefundRequest(
        refund_id=request.refund_id, provider_payment_id=request.provider_payment_id, amount=701, currency="USD"
    )
    with pytest.raises(ProviderError):
        await adapter.refund(too_much, idempotency_key="k-refused")
    assert await adapter.find_refund(too_much, idempotency_key="k-refused", created_after=_since()) is None


async def test_a_bad_key_is_refused(make_adapter: MakeAdapter) -> None:
    adapter = _lookup(make_adapter)
    request = await _refund_of(adapter, payment_methods.SUCCEEDS)
    refused = _lookup(make_adapter, api_key="not-a-sandbox-key")
    with pytest.raises(InvalidCredentialsError):
        await refused.find_refund(request, idempotency_key="k", created_after=_since())
