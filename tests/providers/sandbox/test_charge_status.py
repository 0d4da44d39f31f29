"""charge_status: the sandbox reads a charge from its id; a pending one settles once its delay
has passed since this process made it (at once when another process made it)."""

from __future__ import annotations

import secrets
from typing import Protocol, cast

import pytest
from billplane_sandbox import ledger, payment_methods

from billplane.plugins import ChargeRequest, InvalidCredentialsError, PaymentStatusAdapter, ProviderAdapter
from tests.providers.sandbox.conftest import MakeAdapter

pytestmark = pytest.mark.anyio


class StatusAdapter(ProviderAdapter, PaymentStatusAdapter, Protocol):
    """An adapter with the payment_status capability: both protocols."""


def _adapter(make_adapter: MakeAdapter, **options: object) -> StatusAdapter:
    adapter = make_adapter(**options)
    assert isinstance(adapter, PaymentStatusAdapter)
    return cast("StatusAdapter", adapter)


def _request(token: str) -> ChargeRequest:
    return ChargeRequest(payment_id=10**9 + secrets.randbelow(10**9), amount=900, currency="EUR", payment_method=token)


@pytest.mark.parametrize(
    ("token", "final", "code"),
    [(payment_methods.PENDING_SUCCEEDS, "succeeded", None), (payment_methods.PENDING_FAILS, "failed", "debit_failed")],
)
async def test_a_pending_charge_stays_pending_until_its_delay_has_passed(
    make_adapter: MakeAdapter, monkeypatch: pytest.MonkeyPatch, token: str, final: str, code: str | None
) -> None:
    slow = _adapter(make_adapter, options={"pending_delay_seconds": "3600"})
    made = await slow.charge(_request(token), idempotency_key=f"k-{secrets.token_hex(4)}")
    assert made.status == "pending"

    still = await slow.charge_status(made.provider_payment_id)
    assert still is not None
    assert (still.provider_payment_id, still.status, still.failure_code) == (made.provider_payment_id, "pending", None)

    settled = await _adapter(make_adapter, options={"pending_delay_seconds": "0"}).charge_status(
        made.provider_payment_id
    )
    assert settled is not None
    assert (settled.status, settled.failure_code) == (final, code)

    # Another process never saw the charge made: the id says how it ends.
    monkeypatch.setattr(ledger.LEDGER, "made", lambda _account, _id: None)
    elsewhere = await slow.charge_status(made.provider_payment_id)
    assert elsewhere is not None
    assert elsewhere.status == final


async def test_immediate_outcomes_read_as_they_were_answered(make_adapter: MakeAdapter) -> None:
    adapter = _adapter(make_adapter)
    for token in (payment_methods.SUCCEEDS, payment_methods.DECLINED):
        made = await adapter.charge(_request(token), idempotency_key=f"k-{secrets.token_hex(4)}")
        read = await adapter.charge_status(made.provider_payment_id)
        assert read is not None
        assert (read.status, read.failure_code) == (made.status, made.failure_code)


async def test_ids_it_never_gave_are_none_and_a_bad_key_is_refused(make_adapter: MakeAdapter) -> None:
    adapter = _adapter(make_adapter)
    made = await adapter.charge(_request(payment_methods.SUCCEEDS), idempotency_key="k-status-own")
    assert await _adapter(make_adapter, account_id=2).charge_status(made.provider_payment_id) is None  # not its account
    assert await adapter.charge_status(made.provider_payment_id[:-1] + "x") is None
    assert await adapter.charge_status("pi_123") is None
    with pytest.raises(InvalidCredentialsError):
        await _adapter(make_adapter, api_key="not-a-sandbox-key").charge_status(made.provider_payment_id)
