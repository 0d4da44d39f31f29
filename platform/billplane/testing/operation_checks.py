"""Checks that every declared capability works, idempotently, against the provider's fake."""

# ruff: noqa: S101 - pytest reports assertions, with these messages, as check failures

from __future__ import annotations

import inspect
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import get_args

import msgspec
import pytest

from billplane.plugins import (
    CancelUndoAdapter,
    Capability,
    CatalogUpdateAdapter,
    ChargeResult,
    PaymentLookupAdapter,
    PaymentMethodAdapter,
    PaymentStatusAdapter,
    ProviderAdapter,
    ProviderError,
    ProviderPaymentMethod,
    ProviderPlugin,
    ProviderRef,
    ProviderSubscription,
    RefundLookupAdapter,
    RefundResult,
    RefundStatusAdapter,
    SubscriptionChange,
    SubscriptionMetadataAdapter,
    UnsupportedOperationError,
)
from billplane.plugins.contract import PricingModel, SubscriptionStatus
from billplane.testing import samples
from billplane.testing.capabilities import require
from billplane.testing.samples import PRICING_MODELS

NewKey = Callable[[], str]


def _ref(value: object, what: str) -> str:
    assert isinstance(value, ProviderRef), f"{what} must return a ProviderRef, not {type(value).__name__}"
    assert value.provider_id, f"{what} returned an empty provider id"
    return value.provider_id


def _subscription(value: object, what: str) -> ProviderSubscription:
    assert isinstance(value, ProviderSubscription), f"{what} must return a ProviderSubscription"
    assert value.status in get_args(SubscriptionStatus), f"{what} returned the unknown status {value.status!r}"
    return value


def _first_model(plugin: ProviderPlugin) -> PricingModel:
    return "flat" if "flat" in plugin.pricing_models else next(m for m in PRICING_MODELS if m in plugin.pricing_models)


async def _customer(adapter: ProviderAdapter, new_key: NewKey) -> str:
    return _ref(await adapter.ensure_customer(samples.customer(), idempotency_key=new_key()), "ensure_customer")


async def _price(adapter: ProviderAdapter, plugin: ProviderPlugin, new_key: NewKey, currency: str) -> str:
    product = _ref(await adapter.ensure_product(samples.product(), idempotency_key=new_key()), "ensure_product")
    price = samples.price(_first_model(plugin), product, currency)
    return _ref(await adapter.ensure_price(price, idempotency_key=new_key()), "ensure_price")


class CustomerChecks:
    @pytest.mark.anyio
    async def test_customer_is_idempotent(
        self, provider_plugin: ProviderPlugin, adapter: ProviderAdapter, new_key: NewKey
    ) -> None:
        require(provider_plugin, Capability.CUSTOMERS)
        key = new_key()
        first = _ref(await adapter.ensure_customer(samples.customer(), idempotency_key=key), "ensure_customer")
        again = _ref(await adapter.ensure_customer(samples.customer(), idempotency_key=key), "ensure_customer")
        other = _ref(await adapter.ensure_customer(samples.customer(), idempotency_key=new_key()), "ensure_customer")
        assert first == again, "the same idempotency key must return the same customer"
        assert first != other, "a different idempotency key must create a different customer"

    @pytest.mark.anyio
    async def test_customer_update_and_delete(
        self, provider_plugin: ProviderPlugin, adapter: ProviderAdapter, new_key: NewKey
    ) -> None:
        require(provider_plugin, Capability.CUSTOMERS)
        customer = await _customer(adapter, new_key)
        await adapter.update_customer(customer, samples.customer(), idempotency_key=new_key())
        await adapter.delete_customer(customer, idempotency_key=new_key())
        await adapter.delete_customer(customer, idempotency_key=new_key())  # already gone: not an error


class CatalogChecks:
    @pytest.mark.anyio
    async def test_product_is_idempotent(
        self, provider_plugin: ProviderPlugin, adapter: ProviderAdapter, new_key: NewKey
    ) -> None:
        require(provider_plugin, Capability.CATALOG)
        key = new_key()
        first = _ref(await adapter.ensure_product(samples.product(), idempotency_key=key), "ensure_product")
        again = _ref(await adapter.ensure_product(samples.product(), idempotency_key=key), "ensure_product")
        other = _ref(await adapter.ensure_product(samples.product(), idempotency_key=new_key()), "ensure_product")
        assert first == again, "the same idempotency key must return the same product"
        assert first != other, "a different idempotency key must create a different product"

    @pytest.mark.anyio
    @pytest.mark.parametrize("model", PRICING_MODELS)
    async def test_price_of_each_pricing_model(
        self,
        provider_plugin: ProviderPlugin,
        adapter: ProviderAdapter,
        new_key: NewKey,
        currency: str,
        model: PricingModel,
    ) -> None:
        require(provider_plugin, Capability.CATALOG)
        product = _ref(await adapter.ensure_product(samples.product(), idempotency_key=new_key()), "ensure_product")
        price = samples.price(model, product, currency)
        if model in provider_plugin.pricing_models:
            _ref(await adapter.ensure_price(price, idempotency_key=new_key()), f"ensure_price({model})")
            return
        with pytest.raises(UnsupportedOperationError) as caught:
            await adapter.ensure_price(price, idempotency_key=new_key())
        assert caught.value.reason, "say why the pricing model is unsupported"

    @pytest.mark.anyio
    async def test_price_is_idempotent(
        self, provider_plugin: ProviderPlugin, adapter: ProviderAdapter, new_key: NewKey, currency: str
    ) -> None:
        require(provider_plugin, Capability.CATALOG)
        product = _ref(await adapter.ensure_product(samples.product(), idempotency_key=new_key()), "ensure_product")
        price = samples.price(_first_model(provider_plugin), product, currency)
        key = new_key()
        first = _ref(await adapter.ensure_price(price, idempotency_key=key), "ensure_price")
        again = _ref(await adapter.ensure_price(price, idempotency_key=key), "ensure_price")
        other = _ref(await adapter.ensure_price(price, idempotency_key=new_key()), "ensure_price")
        assert first == again, "the same idempotency key must return the same price"
        assert first != other, "a different idempotency key must create a different price"

    @pytest.mark.anyio
    async def test_catalog_updates(
        self, provider_plugin: ProviderPlugin, adapter: ProviderAdapter, new_key: NewKey, currency: str
    ) -> None:
        require(provider_plugin, Capability.CATALOG_UPDATES)
        assert isinstance(adapter, CatalogUpdateAdapter), (
            "with the catalog_updates capability, define update_product and set_price_active"
        )
        assert inspect.iscoroutinefunction(adapter.update_product), "update_product must be a coroutine function"
        assert inspect.iscoroutinefunction(adapter.set_price_active), "set_price_active must be a coroutine function"
        product = _ref(await adapter.ensure_product(samples.product(), idempotency_key=new_key()), "ensure_product")
        price = _ref(
            await adapter.ensure_price(
                samples.price(_first_model(provider_plugin), product, currency), idempotency_key=new_key()
            ),
            "ensure_price",
        )
        edited = msgspec.structs.replace(samples.product(), name="Conformance product, renamed", description=None)
        key = new_key()
        await adapter.update_product(product, edited, idempotency_key=key)
        await adapter.update_product(product, edited, idempotency_key=key)  # a retry
        archived = msgspec.structs.replace(edited, active=False)
        await adapter.update_product(product, archived, idempotency_key=new_key())
        await adapter.update_product(product, archived, idempotency_key=new_key())  # the same state again
        # Each state asked for twice under new keys: the second finds it done (a call whose answer was lost).
        for active in (False, False, True, True):
            await adapter.set_price_active(price, active=active, idempotency_key=new_key())
        with pytest.raises(ProviderError):
            await adapter.update_product(f"{product}0", edited, idempotency_key=new_key())
        with pytest.raises(ProviderError):
            await adapter.set_price_active(f"{price}0", active=False, idempotency_key=new_key())


class SubscriptionChecks:
    @pytest.mark.anyio
    async def test_subscription_is_idempotent(
        self, provider_plugin: ProviderPlugin, adapter: ProviderAdapter, new_key: NewKey, currency: str
    ) -> None:
        require(provider_plugin, Capability.SUBSCRIPTIONS)
        data = samples.subscription(
            await _customer(adapter, new_key), await _price(adapter, provider_plugin, new_key, currency)
        )
        key = new_key()
        first = _subscription(await adapter.create_subscription(data, idempotency_key=key), "create_subscription")
        again = _subscription(await adapter.create_subscription(data, idempotency_key=key), "create_subscription")
        # Another billplane subscription: the same one under a new key may be found instead (a lost answer).
        another = msgspec.structs.replace(data, subscription_id=data.subscription_id + 1)
        other = _subscription(
            await adapter.create_subscription(another, idempotency_key=new_key()), "create_subscription"
        )
        assert first.provider_id == again.provider_id, "the same idempotency key must return the same subscription"
        assert first.provider_id != other.provider_id, "another subscription must be created as a different one"
        assert first.status in {"active", "trialing", "incomplete"}, f"a new subscription is not {first.status!r}"

    @pytest.mark.anyio
    async def test_subscription_update_and_cancel(
        self, provider_plugin: ProviderPlugin, adapter: ProviderAdapter, new_key: NewKey, currency: str
    ) -> None:
        require(provider_plugin, Capability.SUBSCRIPTIONS)
        data = samples.subscription(
            await _customer(adapter, new_key), await _price(adapter, provider_plugin, new_key, currency)
        )
        created = _subscription(
            await adapter.create_subscription(data, idempotency_key=new_key()), "create_subscription"
        )
        sub = created.provider_id
        updated = _subscription(
            await adapter.update_subscription(sub, SubscriptionChange(quantity=2), idempotency_key=new_key()),
            "update_subscription",
        )
        assert updated.provider_id == sub, "update_subscription must answer for the same subscription"
        later = _subscription(
            await adapter.cancel_subscription(sub, at_period_end=True, idempotency_key=new_key()), "cancel_subscription"
        )
        assert later.cancel_at_period_end or later.status == "canceled", "cancel at period end was not recorded"
        now = _subscription(
            await adapter.cancel_subscription(sub, at_period_end=False, idempotency_key=new_key()),
            "cancel_subscription",
        )
        assert now.status == "canceled", f"a subscription canceled now is 'canceled', not {now.status!r}"

    @pytest.mark.anyio
    async def test_subscription_metadata(
        self, provider_plugin: ProviderPlugin, adapter: ProviderAdapter, new_key: NewKey, currency: str
    ) -> None:
        require(provider_plugin, Capability.SUBSCRIPTION_METADATA)
        assert isinstance(adapter, SubscriptionMetadataAdapter), (
            "with the subscription_metadata capability, define update_subscription_metadata"
        )
        assert inspect.iscoroutinefunction(adapter.update_subscription_metadata), (
            "update_subscription_metadata must be a coroutine function"
        )
        data = msgspec.structs.replace(
            samples.subscription(
                await _customer(adapter, new_key), await _price(adapter, provider_plugin, new_key, currency)
            ),
            metadata={"plan_tier": "gold", "region": "eu"},
        )
        sub = _subscription(await adapter.create_subscription(data, idempotency_key=new_key()), "create_subscription")
        key = new_key()
        edited = {"plan_tier": "platinum", "seats_note": "two more in March"}
        await adapter.update_subscription_metadata(sub.provider_id, edited, idempotency_key=key)
        await adapter.update_subscription_metadata(sub.provider_id, edited, idempotency_key=key)  # a retry
        await adapter.update_subscription_metadata(sub.provider_id, {}, idempotency_key=new_key())
        with pytest.raises(ProviderError):
            await adapter.update_subscription_metadata(f"{sub.provider_id}0", edited, idempotency_key=new_key())

    @pytest.mark.anyio
    async def test_undo_cancel(
        self, provider_plugin: ProviderPlugin, adapter: ProviderAdapter, new_key: NewKey, currency: str
    ) -> None:
        require(provider_plugin, Capability.UNDO_CANCEL)
        assert isinstance(adapter, CancelUndoAdapter), "with the undo_cancel capability, define undo_cancel"
        assert inspect.iscoroutinefunction(adapter.undo_cancel), "undo_cancel must be a coroutine function"
        data = samples.subscription(
            await _customer(adapter, new_key), await _price(adapter, provider_plugin, new_key, currency)
        )
        sub = _subscription(await adapter.create_subscription(data, idempotency_key=new_key()), "create_subscription")
        # Never scheduled (both rows queued, the tenant changed its mind first): left as it is.
        kept = _subscription(await adapter.undo_cancel(sub.provider_id, idempotency_key=new_key()), "undo_cancel")
        assert (kept.status, kept.cancel_at_period_end) == (sub.status, False), "undo_cancel changed a subscription"
        await adapter.cancel_subscription(sub.provider_id, at_period_end=True, idempotency_key=new_key())
        undone = _subscription(await adapter.undo_cancel(sub.provider_id, idempotency_key=new_key()), "undo_cancel")
        assert not undone.cancel_at_period_end, "undo_cancel left the cancellation at the period end"
        assert undone.status == sub.status, f"a subscription kept is {sub.status!r}, not {undone.status!r}"

    @pytest.mark.anyio
    async def test_pause_and_resume(
        self, provider_plugin: ProviderPlugin, adapter: ProviderAdapter, new_key: NewKey, currency: str
    ) -> None:
        require(provider_plugin, Capability.PAUSE)
        data = samples.subscription(
            await _customer(adapter, new_key), await _price(adapter, provider_plugin, new_key, currency)
        )
        sub = _subscription(await adapter.create_subscription(data, idempotency_key=new_key()), "create_subscription")
        paused = _subscription(await adapter.pause_subscription(sub.provider_id, idempotency_key=new_key()), "pause")
        assert paused.status == "paused", f"a paused subscription is 'paused', not {paused.status!r}"
        resumed = _subscription(await adapter.resume_subscription(sub.provider_id, idempotency_key=new_key()), "resume")
        assert resumed.status not in {"paused", "canceled"}, f"a resumed subscription is not {resumed.status!r}"


class UsageChecks:
    @pytest.mark.anyio
    async def test_usage_report_is_counted_once(
        self, provider_plugin: ProviderPlugin, adapter: ProviderAdapter, new_key: NewKey, currency: str
    ) -> None:
        require(provider_plugin, Capability.USAGE)
        customer = await _customer(adapter, new_key)
        product = _ref(await adapter.ensure_product(samples.product(), idempotency_key=new_key()), "ensure_product")
        price = _ref(
            await adapter.ensure_price(samples.price("metered", product, currency), idempotency_key=new_key()),
            "ensure_price",
        )
        created = _subscription(
            await adapter.create_subscription(samples.subscription(customer, price), idempotency_key=new_key()),
            "create_subscription",
        )
        usage = samples.usage(created.provider_id, customer, price)
        # A retry after a crash comes with a new key: the usage record id alone must dedupe it.
        await adapter.report_usage(usage, idempotency_key=new_key())
        await adapter.report_usage(usage, idempotency_key=new_key())  # must not raise, must not count twice


def _payment_id() -> int:
    # Payment ids of their own: the provider's fake may hold charges of other checks.
    return 1_000_000 + secrets.randbelow(1_000_000_000)


class PaymentChecks:
    async def _charge(
        self, plugin: ProviderPlugin, adapter: ProviderAdapter, new_key: NewKey, method: str, currency: str
    ) -> ChargeResult:
        customer = await _customer(adapter, new_key) if Capability.CUSTOMERS in plugin.capabilities else None
        result = await adapter.charge(samples.charge(method, currency, customer), idempotency_key=new_key())
        assert isinstance(result, ChargeResult), "charge must return a ChargeResult"
        assert result.provider_payment_id, "charge returned an empty provider payment id"
        return result

    @pytest.mark.anyio
    async def test_charge_succeeds(
        self,
        provider_plugin: ProviderPlugin,
        adapter: ProviderAdapter,
        new_key: NewKey,
        currency: str,
        succeeding_payment_method: str,
    ) -> None:
        require(provider_plugin, Capability.CHARGES)
        result = await self._charge(provider_plugin, adapter, new_key, succeeding_payment_method, currency)
        assert result.status == "succeeded", f"succeeding_payment_method was charged with status {result.status!r}"

    @pytest.mark.anyio
    async def test_charge_is_idempotent(
        self,
        provider_plugin: ProviderPlugin,
        adapter: ProviderAdapter,
        new_key: NewKey,
        currency: str,
        succeeding_payment_method: str,
    ) -> None:
        require(provider_plugin, Capability.CHARGES)
        key = new_key()
        request = samples.charge(succeeding_payment_method, currency)
        first = await adapter.charge(request, idempotency_key=key)
        again = await adapter.charge(request, idempotency_key=key)
        other = await adapter.charge(request, idempotency_key=new_key())
        assert first.provider_payment_id == again.provider_payment_id, "the same key must not charge twice"
        assert first.provider_payment_id != other.provider_payment_id, "a different key must make a new charge"

    @pytest.mark.anyio
    async def test_attach_payment_method(
        self,
        provider_plugin: ProviderPlugin,
        adapter: ProviderAdapter,
        new_key: NewKey,
        currency: str,
        succeeding_payment_method: str,
    ) -> None:
        require(provider_plugin, Capability.PAYMENT_METHODS)
        assert isinstance(adapter, PaymentMethodAdapter), (
            "with payment_methods, define attach_payment_method and detach_payment_method"
        )
        customer = await _customer(adapter, new_key) if Capability.CUSTOMERS in provider_plugin.capabilities else None
        key = new_key()
        attached = await adapter.attach_payment_method(succeeding_payment_method, customer, idempotency_key=key)
        assert isinstance(attached, ProviderPaymentMethod), "attach_payment_method must return a ProviderPaymentMethod"
        assert attached.provider_payment_method_id, "attach_payment_method returned an empty id"
        again = await adapter.attach_payment_method(succeeding_payment_method, customer, idempotency_key=key)
        assert again == attached, "attaching the same method again (a retry) must answer the same"
        request = samples.charge(attached.provider_payment_method_id, currency, customer)
        charged = await adapter.charge(request, idempotency_key=new_key())
        assert charged.status == "succeeded", "a charge with the attached method must succeed"

    @pytest.mark.anyio
    async def test_detach_payment_method(
        self,
        provider_plugin: ProviderPlugin,
        adapter: ProviderAdapter,
        new_key: NewKey,
        succeeding_payment_method: str,
    ) -> None:
        require(provider_plugin, Capability.PAYMENT_METHODS)
        assert isinstance(adapter, PaymentMethodAdapter), (
            "with payment_methods, define attach_payment_method and detach_payment_method"
        )
        assert inspect.iscoroutinefunction(adapter.detach_payment_method), (
            "detach_payment_method must be a coroutine function"
        )
        customer = await _customer(adapter, new_key) if Capability.CUSTOMERS in provider_plugin.capabilities else None
        attached = await adapter.attach_payment_method(succeeding_payment_method, customer, idempotency_key=new_key())
        method = attached.provider_payment_method_id
        key = new_key()
        await adapter.detach_payment_method(method, customer, idempotency_key=key)
        # A retry (its answer lost), then billplane's own second detach: both find it detached already.
        await adapter.detach_payment_method(method, customer, idempotency_key=key)
        await adapter.detach_payment_method(method, customer, idempotency_key=new_key())

    @pytest.mark.anyio
    async def test_decline_is_a_failed_result(
        self,
        provider_plugin: ProviderPlugin,
        adapter: ProviderAdapter,
        new_key: NewKey,
        currency: str,
        declining_payment_method: str,
    ) -> None:
        require(provider_plugin, Capability.CHARGES)
        result = await self._charge(provider_plugin, adapter, new_key, declining_payment_method, currency)
        assert result.status == "failed", f"a declined charge is 'failed', not {result.status!r}"
        assert result.failure_code, "a declined charge says why in failure_code"

    @pytest.mark.anyio
    async def test_find_payment(
        self,
        provider_plugin: ProviderPlugin,
        adapter: ProviderAdapter,
        new_key: NewKey,
        currency: str,
        succeeding_payment_method: str,
    ) -> None:
        require(provider_plugin, Capability.PAYMENT_LOOKUP)
        assert isinstance(adapter, PaymentLookupAdapter), "with the payment_lookup capability, define find_payment"
        assert inspect.iscoroutinefunction(adapter.find_payment), "find_payment must be a coroutine function"
        customer = await _customer(adapter, new_key) if Capability.CUSTOMERS in provider_plugin.capabilities else None
        since = datetime.now(UTC) - timedelta(minutes=10)
        charged = samples.charge(succeeding_payment_method, currency, customer, payment_id=_payment_id())
        key = new_key()
        made = await adapter.charge(charged, idempotency_key=key)
        found = await adapter.find_payment(charged, idempotency_key=key, created_after=since)
        assert isinstance(found, ChargeResult), "find_payment did not find a charge that was made"
        assert found.provider_payment_id == made.provider_payment_id, "find_payment found another charge"
        assert found.status == made.status, f"find_payment says {found.status!r}, the charge said {made.status!r}"
        never = samples.charge(succeeding_payment_method, currency, customer, payment_id=_payment_id())
        missing = await adapter.find_payment(never, idempotency_key=new_key(), created_after=since)
        assert missing is None, "find_payment must answer None for a payment that was never charged"

    @pytest.mark.anyio
    async def test_charge_status(
        self,
        provider_plugin: ProviderPlugin,
        adapter: ProviderAdapter,
        new_key: NewKey,
        currency: str,
        succeeding_payment_method: str,
    ) -> None:
        require(provider_plugin, Capability.PAYMENT_STATUS)
        assert isinstance(adapter, PaymentStatusAdapter), "with the payment_status capability, define charge_status"
        assert inspect.iscoroutinefunction(adapter.charge_status), "charge_status must be a coroutine function"
        made = await self._charge(provider_plugin, adapter, new_key, succeeding_payment_method, currency)
        read = await adapter.charge_status(made.provider_payment_id)
        assert isinstance(read, ChargeResult), "charge_status did not read a charge that was made"
        assert read.provider_payment_id == made.provider_payment_id, "charge_status read another charge"
        assert read.status == made.status, f"charge_status says {read.status!r}, the charge said {made.status!r}"
        missing = await adapter.charge_status(f"{made.provider_payment_id}0")
        assert missing is None, "charge_status must answer None for an id the provider never gave"

    @pytest.mark.anyio
    async def test_refund(
        self,
        provider_plugin: ProviderPlugin,
        adapter: ProviderAdapter,
        new_key: NewKey,
        currency: str,
        succeeding_payment_method: str,
    ) -> None:
        require(provider_plugin, Capability.REFUNDS)
        payment = await self._charge(provider_plugin, adapter, new_key, succeeding_payment_method, currency)
        request = samples.refund(payment.provider_payment_id, currency)
        key = new_key()
        first = await adapter.refund(request, idempotency_key=key)
        assert isinstance(first, RefundResult), "refund must return a RefundResult"
        assert first.status in {"succeeded", "pending"}, f"a partial refund of a paid charge is not {first.status!r}"
        again = await adapter.refund(request, idempotency_key=key)
        other = await adapter.refund(request, idempotency_key=new_key())
        assert first.provider_refund_id == again.provider_refund_id, "the same key must not refund twice"
        assert first.provider_refund_id != other.provider_refund_id, "a different key must make a new refund"

    @pytest.mark.anyio
    async def test_find_refund(
        self,
        provider_plugin: ProviderPlugin,
        adapter: ProviderAdapter,
        new_key: NewKey,
        currency: str,
        succeeding_payment_method: str,
    ) -> None:
        require(provider_plugin, Capability.REFUND_LOOKUP)
        assert isinstance(adapter, RefundLookupAdapter), "with the refund_lookup capability, define find_refund"
        assert inspect.iscoroutinefunction(adapter.find_refund), "find_refund must be a coroutine function"
        since = datetime.now(UTC) - timedelta(minutes=10)
        payment = await self._charge(provider_plugin, adapter, new_key, succeeding_payment_method, currency)
        refunded = samples.refund(payment.provider_payment_id, currency, refund_id=_payment_id())
        key = new_key()
        made = await adapter.refund(refunded, idempotency_key=key)
        found = await adapter.find_refund(refunded, idempotency_key=key, created_after=since)
        assert isinstance(found, RefundResult), "find_refund did not find a refund that was made"
        assert found.provider_refund_id == made.provider_refund_id, "find_refund found another refund"
        if made.status != "pending":  # a pending refund may have settled since: any answer is then right
            assert found.status == made.status, f"find_refund says {found.status!r}, the refund said {made.status!r}"
        never = samples.refund(payment.provider_payment_id, currency, refund_id=_payment_id())
        missing = await adapter.find_refund(never, idempotency_key=new_key(), created_after=since)
        assert missing is None, "find_refund must answer None for a refund that was never made"
        # Another tenant on the same account may have a refund with the same billplane id, of its own payment.
        other = await self._charge(provider_plugin, adapter, new_key, succeeding_payment_method, currency)
        elsewhere = msgspec.structs.replace(refunded, provider_payment_id=other.provider_payment_id)
        found_elsewhere = await adapter.find_refund(elsewhere, idempotency_key=new_key(), created_after=since)
        assert found_elsewhere is None, "find_refund must look only among the refunds of the request's payment"

    @pytest.mark.anyio
    async def test_refund_status(
        self,
        provider_plugin: ProviderPlugin,
        adapter: ProviderAdapter,
        new_key: NewKey,
        currency: str,
        succeeding_payment_method: str,
    ) -> None:
        require(provider_plugin, Capability.REFUND_STATUS)
        assert isinstance(adapter, RefundStatusAdapter), "with the refund_status capability, define refund_status"
        assert inspect.iscoroutinefunction(adapter.refund_status), "refund_status must be a coroutine function"
        payment = await self._charge(provider_plugin, adapter, new_key, succeeding_payment_method, currency)
        made = await adapter.refund(samples.refund(payment.provider_payment_id, currency), idempotency_key=new_key())
        read = await adapter.refund_status(made.provider_refund_id)
        assert isinstance(read, RefundResult), "refund_status did not read a refund that was made"
        assert read.provider_refund_id == made.provider_refund_id, "refund_status read another refund"
        if made.status != "pending":  # a pending refund may have settled since: any answer is then right
            assert read.status == made.status, f"refund_status says {read.status!r}, the refund said {made.status!r}"
        missing = await adapter.refund_status(f"{made.provider_refund_id}0")
        assert missing is None, "refund_status must answer None for an id the provider never gave"
