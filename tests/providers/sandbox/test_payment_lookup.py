"""find_payment: the sandbox answers from the charges it made (its ledger), and its network test
payment methods simulate a charge that never arrived and one whose answer was lost."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Protocol, cast

import pytest
from billplane_sandbox import ledger, payment_methods

from billplane.plugins import (
    ChargeRequest,
    ChargeResult,
    InvalidCredentialsError,
    PaymentLookupAdapter,
    ProviderAdapter,
    RetryableProviderError,
)
from tests.providers.sandbox.conftest import MakeAdapter

pytestmark = pytest.mark.anyio


def _since() -> datetime:
    return datetime.now(UTC) - timedelta(minutes=10)


def _request(token: str) -> ChargeRequest:
    # Payment ids of this test only: the ledger is shared by the whole process.
    return ChargeRequest(payment_id=10**9 + secrets.randbelow(10**9), amount=700, currency="USD", payment_method=token)


class LookupAdapter(ProviderAdapter, PaymentLookupAdapter, Protocol):
    """An adapter with the payment_lookup capability: both protocols."""


def _lookup(make_adapter: MakeAdapter, **options: object) -> LookupAdapter:
    adapter = make_adapter(**options)
    assert isinstance(adapter, PaymentLookupAdapter)
    return cast("LookupAdapter", adapter)


async def test_a_charge_that_never_arrived_is_not_found(make_adapter: MakeAdapter) -> None:
    adapter = _lookup(make_adapter)
    request = _request(payment_methods.UNREACHABLE)
    with pytest.raises(RetryableProviderError):
        await adapter.charge(request, idempotency_key="k-unreachable")
    assert await adapter.find_payment(request, idempotency_key="k-unreachable", created_after=_since()) is None


async def test_a_charge_whose_answer_was_lost_is_found_succeeded(make_adapter: MakeAdapter) -> None:
    adapter = _lookup(make_adapter)
    request = _request(payment_methods.ANSWER_LOST)
    for _ in range(2):  # a retry with the same key is the same charge, and its answer is lost again
        with pytest.raises(RetryableProviderError):
            await adapter.charge(request, idempotency_key="k-lost")
    found = await adapter.find_payment(request, idempotency_key="k-lost", created_after=_since())
    assert found is not None
    assert (found.status, found.provider_payment_id.startswith("sbx_pay_")) == ("succeeded", True)


async def test_another_process_finds_a_charge_whose_answer_was_lost(
    make_adapter: MakeAdapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter = _lookup(make_adapter)
    request = _request(payment_methods.ANSWER_LOST)
    with pytest.raises(RetryableProviderError):
        await adapter.charge(request, idempotency_key="k-elsewhere")
    made = await adapter.find_payment(request, idempotency_key="k-elsewhere", created_after=_since())
    # A worker in another process: its ledger never saw the charge, the test method still says it was made.
    monkeypatch.setattr(ledger, "LEDGER", ledger.ChargeLedger())
    monkeypatch.setattr("billplane_sandbox.adapter.LEDGER", ledger.LEDGER)
    assert await adapter.find_payment(request, idempotency_key="k-elsewhere", created_after=_since()) == made
    never = _request(payment_methods.UNREACHABLE)
    assert await adapter.find_payment(never, idempotency_key="k-elsewhere", created_after=_since()) is None


async def test_a_decline_is_found_failed_and_a_pending_charge_settled_after_its_delay(
    make_adapter: MakeAdapter,
) -> None:
    adapter = _lookup(make_adapter, options={"pending_delay_seconds": "0"})
    declined, pending = _request(payment_methods.DECLINED), _request(payment_methods.PENDING_FAILS)
    made = await adapter.charge(declined, idempotency_key="k-declined")
    await adapter.charge(pending, idempotency_key="k-pending")
    found = await adapter.find_payment(declined, idempotency_key="k-declined", created_after=_since())
    assert found == made
    settled = await adapter.find_payment(pending, idempotency_key="k-pending", created_after=_since())
    assert settled is not None
    assert (settled.status, settled.failure_code) == ("failed", "debit_failed")


async def test_only_the_accounts_own_charges_made_since_then_are_found(make_adapter: MakeAdapter) -> None:
    mine, other = _lookup(make_adapter, account_id=41), _lookup(make_adapter, account_id=42)
    request = _request(payment_methods.SUCCEEDS)
    await mine.charge(request, idempotency_key="k-mine")
    assert await other.find_payment(request, idempotency_key="k-mine", created_after=_since()) is None
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert await mine.find_payment(request, idempotency_key="k-mine", created_after=later) is None
    assert await mine.find_payment(request, idempotency_key="k-mine", created_after=_since()) is not None


async def test_a_bad_key_is_refused(make_adapter: MakeAdapter) -> None:
    adapter = _lookup(make_adapter, api_key="not-a-sandbox-key")
    with pytest.raises(InvalidCredentialsError):
        await adapter.find_payment(_request(payment_methods.SUCCEEDS), idempotency_key="k", created_after=_since())


def test_the_ledger_forgets_the_oldest_payments_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger, "MAX_PAYMENTS", 2)
    book: ledger.Ledger[ledger.Charge] = ledger.Ledger()
    result = ChargeResult(provider_payment_id="sbx_pay_x", status="succeeded")
    method = payment_methods.PAYMENT_METHODS[payment_methods.SUCCEEDS]
    for payment_id in (1, 2, 3):
        book.record(7, payment_id, ledger.Charge(f"k{payment_id}", result, method, ledger.now()))
    book.record(7, 3, ledger.Charge("k3", result, method, ledger.now()))  # a retry is the same charge
    assert book.find(7, 1, "k1", 0) is None
    assert [book.find(7, payment_id, "other", 0) is not None for payment_id in (2, 3)] == [True, True]
