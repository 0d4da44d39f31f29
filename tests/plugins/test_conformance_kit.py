"""The conformance kit can fail: run it (pytester) against a deliberately broken provider."""

from __future__ import annotations

import re

import pytest

pytest_plugins = ["pytester"]

BROKEN_PROVIDER = """
import secrets
from datetime import UTC, datetime

import msgspec
import pytest

from billplane.plugins import (
    AdapterContext, Capability, ChargeResult, ProviderError, ProviderPlugin, ProviderRef, ProviderSubscription,
    RefundResult, UnsupportedOperationError, hookimpl,
)
from billplane.testing import ConformanceSuite, load_plugin


class Credentials(msgspec.Struct):  # not forbid_unknown_fields
    token: str


class BrokenAdapter:
    def __init__(self, context):
        self.context = context

    async def check_credentials(self):
        pass  # accepts anything

    async def ensure_customer(self, customer, *, idempotency_key):
        return ProviderRef(provider_id=secrets.token_hex(4))  # ignores the key

    async def update_customer(self, provider_customer_id, customer, *, idempotency_key):
        pass

    async def delete_customer(self, provider_customer_id, *, idempotency_key):
        pass

    async def ensure_product(self, product, *, idempotency_key):
        return ProviderRef(provider_id="prod_" + idempotency_key)

    async def ensure_price(self, price, *, idempotency_key):
        if price.pricing_model == "volume":
            raise ProviderError("volume prices are broken")
        return ProviderRef(provider_id="price_" + idempotency_key)  # even for undeclared models

    async def create_subscription(self, subscription, *, idempotency_key):
        raise UnsupportedOperationError("create_subscription", "no subscriptions")

    async def update_subscription(self, provider_subscription_id, change, *, idempotency_key):
        raise UnsupportedOperationError("update_subscription", "no subscriptions")

    async def cancel_subscription(self, provider_subscription_id, *, at_period_end, idempotency_key):
        raise UnsupportedOperationError("cancel_subscription", "no subscriptions")

    async def pause_subscription(self, provider_subscription_id, *, idempotency_key):
        return ProviderSubscription(provider_id=provider_subscription_id, status="paused")  # undeclared, yet works

    async def resume_subscription(self, provider_subscription_id, *, idempotency_key):
        raise UnsupportedOperationError("resume_subscription", "no pause")

    async def charge(self, request, *, idempotency_key):
        return ChargeResult(provider_payment_id="pay_" + idempotency_key, status="succeeded")  # never declines

    def refund(self, request, *, idempotency_key):  # not a coroutine
        return RefundResult(provider_refund_id="re_" + idempotency_key, status="succeeded")

    async def report_usage(self, usage, *, idempotency_key):
        raise UnsupportedOperationError("report_usage", "no usage")

    async def parse_webhook(self, headers, body):
        return []  # verifies nothing, finds nothing


PLUGIN = ProviderPlugin(
    name="broken",
    version="0.0.1",
    description="Fails the kit on purpose.",
    capabilities=frozenset({Capability.CUSTOMERS, Capability.CATALOG, Capability.CHARGES, Capability.REFUNDS,
                            Capability.WEBHOOKS, Capability.CATALOG_UPDATES}),  # declared, not implemented
    pricing_models=frozenset({"flat", "volume"}),
    credentials_type=Credentials,
    create_adapter=BrokenAdapter,
    secret_fields=frozenset({"token", "password"}),
)


@hookimpl
def billplane_register_providers(register):
    register(PLUGIN)


class TestBrokenProvider(ConformanceSuite):
    @pytest.fixture
    def provider_plugin(self):
        import test_broken
        return load_plugin(test_broken, "broken")

    @pytest.fixture
    def adapter_context(self):
        return AdapterContext(tenant_id=1, account_id=1, mode="test", credentials=Credentials(token="good"),
                              webhook_secret="secret")

    @pytest.fixture
    def bad_credentials(self):
        return Credentials(token="bad")

    @pytest.fixture
    def succeeding_payment_method(self):
        return "tok_ok"

    @pytest.fixture
    def declining_payment_method(self):
        return "tok_decline"

    @pytest.fixture
    def build_webhook(self):
        return lambda secret, timestamp: ({"signature": secret}, b'{"id": "evt_1"}')
"""

EXPECTED_FAILURES = {
    "test_credentials_type_is_a_strict_struct",
    "test_secret_fields_exist_in_credentials",
    "test_adapter_methods_match_the_protocol",
    "test_bad_credentials_are_refused",
    "test_undeclared_operations_are_unsupported",
    "test_customer_is_idempotent",
    "test_price_of_each_pricing_model[tiered]",
    "test_price_of_each_pricing_model[volume]",
    "test_price_of_each_pricing_model[package]",
    "test_price_of_each_pricing_model[metered]",
    "test_price_of_each_pricing_model[per_seat]",
    "test_catalog_updates",
    "test_decline_is_a_failed_result",
    "test_refund",
    "test_valid_webhook_is_accepted",
    "test_tampered_body_is_rejected",
    "test_wrong_secret_is_rejected",
    "test_old_webhook_is_rejected",
    "test_unsigned_webhook_is_rejected",
}


def test_the_kit_reports_every_broken_rule(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_broken=BROKEN_PROVIDER)
    result = pytester.runpytest("-p", "billplane.testing", "-rfs")
    failed = set(re.findall(r"^FAILED test_broken\.py::TestBrokenProvider::(\S+)", result.stdout.str(), re.MULTILINE))
    assert failed == EXPECTED_FAILURES, result.stdout.str()
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] == len(EXPECTED_FAILURES)
    assert outcomes["passed"] > 0  # the rules the broken provider keeps still pass
    # Not declared, so skipped: subscriptions, pause, usage, payment_lookup, payment_status,
    # refund_lookup, refund_status, undo_cancel, payment_methods (attach and detach) and
    # subscription_metadata.
    assert outcomes["skipped"] == 12
    output = result.stdout.str()
    for reason in (
        "pause_subscription returned instead of raising",
        "refund must be a coroutine function",
        "the same idempotency key must return the same customer",
        "secret_fields ['password'] are not fields of Credentials",
        "volume prices are broken",
        "with the catalog_updates capability, define update_product and set_price_active",
    ):
        assert reason in output


def test_a_missing_fixture_says_what_to_override(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_empty="""
        from billplane.testing import ConformanceSuite

        class TestNothingOverridden(ConformanceSuite):
            pass
        """
    )
    result = pytester.runpytest("-p", "billplane.testing", "-k", "test_name_is_valid")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*override the `provider_plugin` fixture in your ConformanceSuite subclass*"])


def test_an_enabled_kit_that_checks_nothing_says_so(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_other="def test_unrelated():\n    pass\n")
    result = pytester.runpytest("-p", "billplane.testing")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*no ConformanceSuite subclass was collected, so no provider was checked*"])
