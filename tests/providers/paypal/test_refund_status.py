"""refund_status: a Payments v2 refund read by its id (``GET /v2/payments/refunds/{id}``) as it
stands now, against the fake PayPal; and the fake's refunds in the shape of PayPal's spec."""

from __future__ import annotations

import gzip
import json
import socket
import uuid

import pytest
from billplane_paypal import refunds
from billplane_paypal.adapter import PayPalAdapter
from jsonschema import Draft7Validator  # type: ignore[import-untyped] # no stubs in the dev group

from billplane.plugins import (
    Capability,
    ChargeRequest,
    ProviderError,
    RefundRequest,
    RefundResult,
    RefundStatusAdapter,
    RetryableProviderError,
)
from billplane.plugins.host import PluginHost
from tests.providers.paypal.conftest import MakeAdapter
from tests.providers.paypal.fake_paypal import FakePayPal
from tests.providers.paypal.spec_check import SPEC_DIR, unknown_properties

REFUND_ID = 7  # billplane's id of the refund


async def _capture(adapter: PayPalAdapter, paypal: FakePayPal) -> str:
    sub = paypal.seed_active_subscription(value="20.00")
    request = ChargeRequest(payment_id=3, amount=2000, currency="USD", provider_subscription_id=sub)
    charge = await adapter.charge(request, idempotency_key=f"charge-{uuid.uuid4()}")
    assert charge.status == "succeeded"
    return charge.provider_payment_id


async def _refund(adapter: PayPalAdapter, capture_id: str, amount: int = 500) -> RefundResult:
    request = RefundRequest(refund_id=REFUND_ID, provider_payment_id=capture_id, amount=amount, currency="USD")
    return await adapter.refund(request, idempotency_key=f"refund-{uuid.uuid4()}")


def test_the_plugin_declares_refund_status(make_adapter: MakeAdapter) -> None:
    # Without the capability billplane never asks, and the conformance kit skips its check.
    assert Capability.REFUND_STATUS in PluginHost.discover(["paypal"], environ={}).get("paypal").capabilities
    assert isinstance(make_adapter(), RefundStatusAdapter)


async def test_a_completed_refund_reads_succeeded_with_its_capture_amount_and_billplane_id(
    make_adapter: MakeAdapter, paypal: FakePayPal
) -> None:
    adapter = make_adapter()
    capture_id = await _capture(adapter, paypal)
    made = await _refund(adapter, capture_id)
    assert made.status == "succeeded"

    read = await adapter.refund_status(made.provider_refund_id)
    assert paypal.log[-1].method == "GET"
    assert paypal.log[-1].path == f"/v2/payments/refunds/{made.provider_refund_id}"
    assert read == RefundResult(
        provider_refund_id=made.provider_refund_id,
        status="succeeded",
        provider_payment_id=capture_id,
        amount=500,
        currency="USD",
        billplane_refund_id=REFUND_ID,
    )


async def test_a_pending_refund_reads_pending_until_paypal_completes_it(
    make_adapter: MakeAdapter, paypal: FakePayPal
) -> None:
    adapter = make_adapter()
    capture_id = await _capture(adapter, paypal)
    paypal.refunds_clearing.add(capture_id)
    made = await _refund(adapter, capture_id)
    assert (made.status, made.failure_message) == ("pending", None)

    still = await adapter.refund_status(made.provider_refund_id)
    assert still is not None
    assert (still.status, still.failure_message, still.amount) == ("pending", None, 500)

    paypal.settle_refund(made.provider_refund_id, "COMPLETED")
    done = await adapter.refund_status(made.provider_refund_id)
    assert done is not None
    assert (done.status, done.failure_message, done.amount) == ("succeeded", None, 500)


@pytest.mark.parametrize(
    ("outcome", "message"),
    [("FAILED", "ECHECK"), ("CANCELLED", "PayPal cancelled the refund")],
)
async def test_a_pending_refund_paypal_fails_or_cancels_reads_failed(
    make_adapter: MakeAdapter, paypal: FakePayPal, outcome: str, message: str
) -> None:
    adapter = make_adapter()
    capture_id = await _capture(adapter, paypal)
    paypal.refunds_clearing.add(capture_id)
    made = await _refund(adapter, capture_id)
    paypal.settle_refund(made.provider_refund_id, outcome)

    read = await adapter.refund_status(made.provider_refund_id)
    assert read is not None
    assert (read.status, read.failure_message) == ("failed", message)
    assert (read.provider_payment_id, read.amount, read.currency) == (capture_id, 500, "USD")
    # The money never left: the whole capture can be refunded again.
    paypal.refunds_clearing.clear()
    assert (await _refund(adapter, capture_id, amount=2000)).status == "succeeded"


async def test_a_refund_paypal_does_not_know_is_none(make_adapter: MakeAdapter, paypal: FakePayPal) -> None:
    adapter = make_adapter()
    assert await adapter.refund_status("0UNKNOWN0000000000") is None
    assert paypal.log[-1].path == "/v2/payments/refunds/0UNKNOWN0000000000"
    # The id stays one path segment: it must not read the capture as if it were a refund.
    capture_id = await _capture(adapter, paypal)
    assert await adapter.refund_status(f"../captures/{capture_id}") is None


@pytest.mark.parametrize("how", ["unreachable", "503"])
async def test_an_unreachable_paypal_is_retryable(make_adapter: MakeAdapter, paypal: FakePayPal, how: str) -> None:
    if how == "unreachable":
        with socket.socket() as probe:  # a port nobody listens on
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        adapter = make_adapter(options={"api_base": f"http://127.0.0.1:{port}"})
    else:
        adapter = make_adapter()
        paypal.fail_next("/v2/payments/refunds/", 503)
    with pytest.raises(RetryableProviderError):
        await adapter.refund_status("1JU08902781691411")


async def test_a_refusal_other_than_not_found_is_raised_not_none(make_adapter: MakeAdapter, paypal: FakePayPal) -> None:
    paypal.fail_next("/v2/payments/refunds/", 403)
    with pytest.raises(ProviderError) as caught:
        await make_adapter().refund_status("1JU08902781691411")
    assert not isinstance(caught.value, RetryableProviderError)


@pytest.mark.parametrize(
    ("body", "outcome"),
    [
        ({"status": "REVERSED"}, ("pending", None)),  # a status PayPal may add: asked again, not guessed
        ({}, ("pending", None)),
        ({"status": "FAILED"}, ("failed", "PayPal refused the refund")),
    ],
)
def test_a_status_the_spec_does_not_give_waits(body: dict[str, str], outcome: tuple[str, str | None]) -> None:
    read = refunds.from_v2({"id": "1JU08902781691411", **body}, tenant_id=1)
    assert (read.status, read.failure_message) == outcome


async def test_the_fakes_refunds_have_the_shape_of_paypals_refund_schema(
    make_adapter: MakeAdapter, paypal: FakePayPal
) -> None:
    document = json.loads(gzip.decompress((SPEC_DIR / "payments_payment_v2.json.gz").read_bytes()))
    schema = {"$ref": "#/components/schemas/refund", "components": document["components"]}
    adapter = make_adapter()
    capture_id = await _capture(adapter, paypal)
    paypal.refunds_clearing.add(capture_id)
    shown = [(await _refund(adapter, capture_id, amount=100)).provider_refund_id for _ in range(4)]
    for refund_id, outcome in zip(shown[1:], ["COMPLETED", "FAILED", "CANCELLED"], strict=True):
        paypal.settle_refund(refund_id, outcome)
    with pytest.raises(ValueError, match="not PENDING"):
        paypal.settle_refund(shown[1], "FAILED")  # PayPal settles a refund once

    for refund_id in shown:
        refund = paypal.refunds[refund_id]
        errors = [error.message for error in Draft7Validator(schema).iter_errors(refund)]
        assert not errors, f"{refund['status']}: {errors}"
        assert not unknown_properties(schema, refund, document, ""), refund["status"]
    statuses = [paypal.refunds[refund_id]["status"] for refund_id in shown]
    assert statuses == ["PENDING", "COMPLETED", "FAILED", "CANCELLED"]
