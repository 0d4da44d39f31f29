"""The fake's referee catches what PayPal would refuse or silently ignore."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.providers.paypal.fake_paypal import FakePayPal
from tests.providers.paypal.spec_check import SpecChecker

CHECKER = SpecChecker.load()
CYCLE = {
    "frequency": {"interval_unit": "MONTH", "interval_count": 1},
    "tenure_type": "REGULAR",
    "sequence": 1,
    "total_cycles": 0,
    "pricing_scheme": {"fixed_price": {"currency_code": "USD", "value": "10.00"}},
}
PLAN = {"product_id": "PROD-123456", "name": "Pro", "billing_cycles": [CYCLE], "payment_preferences": {}}


def _check(method: str, path: str, body: object = None, **headers: str) -> list[str]:
    raw = json.dumps(body).encode() if body is not None else b""
    return CHECKER.check(method, path, {}, headers, raw)


def test_all_four_specs_are_loaded() -> None:
    templates = {op.template for op in CHECKER.operations}
    assert {
        "/v1/catalogs/products",
        "/v1/billing/plans",
        "/v1/billing/subscriptions/{id}/revise",
        "/v2/payments/captures/{capture_id}/refund",
        "/v1/notifications/verify-webhook-signature",
    } <= templates


def test_paypal_promises_a_replay_only_for_creates_captures_and_refunds() -> None:
    """Which of the POSTs the adapter sends PayPal replays for a repeated PayPal-Request-Id: the
    adapter's retry safety (adapter.py's docstring) rests on this list."""
    sent = [
        "/v1/catalogs/products",
        "/v1/billing/plans",
        "/v1/billing/subscriptions",
        "/v1/billing/subscriptions/I-1/revise",
        "/v1/billing/subscriptions/I-1/suspend",
        "/v1/billing/subscriptions/I-1/activate",
        "/v1/billing/subscriptions/I-1/cancel",
        "/v1/billing/subscriptions/I-1/capture",
        "/v2/payments/captures/C-1/refund",
        "/v1/notifications/verify-webhook-signature",
    ]
    operations = [CHECKER.find("POST", path) for path in sent]
    replayed = {op.template for op in operations if op is not None and "paypal-request-id" in op.declared("header")}
    assert None not in operations
    assert replayed == {
        "/v1/catalogs/products",
        "/v1/billing/plans",
        "/v1/billing/subscriptions",
        "/v1/billing/subscriptions/{id}/capture",
        "/v2/payments/captures/{capture_id}/refund",
    }


def test_a_conforming_request_passes() -> None:
    assert _check("POST", "/v1/billing/plans", PLAN, **{"PayPal-Request-Id": "k"}) == []


def test_an_unknown_property_is_caught_even_where_the_schema_allows_extras() -> None:
    scheme = {**CYCLE["pricing_scheme"], "fixed_prize": {"currency_code": "USD", "value": "1.00"}}  # type: ignore[dict-item]
    plan = {**PLAN, "billing_cycles": [{**CYCLE, "pricing_scheme": scheme}]}
    assert _check("POST", "/v1/billing/plans", plan) == [
        "POST /v1/billing/plans: /billing_cycles/0/pricing_scheme/fixed_prize: unknown property 'fixed_prize'"
    ]


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [
        ("POST", "/v1/billing/plans/P-1/explode", None, "no such operation"),
        ("DELETE", "/v1/billing/subscriptions/I-1", None, "no such operation"),
        ("POST", "/v1/billing/plans", {**PLAN, "billing_cycles": "monthly"}, "is not of type 'array'"),
        ("POST", "/v1/billing/plans", {"name": "x"}, "'product_id' is a required property"),
        ("POST", "/v1/billing/subscriptions/I-1/suspend", {}, "'reason' is a required property"),
        (
            "POST",
            "/v1/billing/subscriptions/I-1/capture",
            {"note": "n", "capture_type": "OUTSTANDING_BALANCE", "amount": {"currency_code": "USD", "value": 10.5}},
            "is not of type 'string'",
        ),
    ],
)
def test_requests_breaking_the_specs_are_caught(method: str, path: str, body: object, expected: str) -> None:
    problems = _check(method, path, body)
    assert problems
    assert any(expected in problem for problem in problems), problems


def test_undeclared_headers_and_query_parameters_are_caught() -> None:
    assert _check("POST", "/v1/billing/plans", PLAN, **{"PayPal-Partner-Attribution-Id": "x"}) == [
        "POST /v1/billing/plans: undeclared header 'paypal-partner-attribution-id'"
    ]
    assert CHECKER.check("GET", "/v1/billing/subscriptions/I-1", {"expand": ["all"]}, {}, b"") == [
        "GET /v1/billing/subscriptions/{id}: undeclared query parameter 'expand'"
    ]


def test_the_fake_answers_a_violation_with_400_and_records_it(paypal: FakePayPal) -> None:
    response = httpx.post(
        f"{paypal.base_url}/v1/catalogs/products",
        json={"name": "x", "type": "SERVICE", "colour": 1},
        headers={"PayPal-Request-Id": "spec-check"},
    )
    assert response.status_code == 400
    assert response.json()["name"] == "INVALID_REQUEST"
    with paypal.lock:
        assert paypal.violations[-1] == "POST /v1/catalogs/products: /colour: unknown property 'colour'"
        paypal.violations.pop()  # recorded as it should be; the fixture's teardown would fail on it
