"""The Stripe adapter: one tenant's Stripe account, through its own ``StripeClient``."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import stripe

from billplane.plugins import (
    CUSTOMER_NOT_SYNCED,
    AdapterContext,
    ChargeRequest,
    ChargeResult,
    CustomerData,
    InvalidCredentialsError,
    PriceData,
    ProductData,
    ProviderError,
    ProviderEvent,
    ProviderPaymentMethod,
    ProviderRef,
    ProviderSubscription,
    RefundRequest,
    RefundResult,
    SubscriptionChange,
    SubscriptionData,
    UsageReport,
)
from billplane_stripe import catalog, payment_methods, payments, subscriptions, webhooks
from billplane_stripe import usage as meter_events
from billplane_stripe.client import build_client
from billplane_stripe.credentials import StripeCredentials, key_problem
from billplane_stripe.errors import error_body, stripe_errors, translate

Params = dict[str, Any]


def _options(idempotency_key: str, step: str | None = None) -> Any:
    # A call made of several POSTs gives each its own key, derived from billplane's, so that a
    # retry replays every step instead of colliding with the first one's parameters.
    return {"idempotency_key": idempotency_key if step is None else f"{idempotency_key}:{step}"}


def _sdk(params: Params) -> Any:
    # Parameters are built as plain dicts; the test suite checks each one against Stripe's OpenAPI
    # spec (and the SDK's declared types for Billing Meters), which is stricter than the TypedDicts.
    return params


def _plain(obj: Any) -> dict[str, Any]:
    result = obj.to_dict()
    if not isinstance(result, dict):
        raise ProviderError("Stripe answered with something that is not an object", code="unexpected_response")
    return result


class StripeAdapter:
    def __init__(self, context: AdapterContext, credentials: StripeCredentials) -> None:
        self._context = context
        self._credentials = credentials
        self._client = build_client(credentials.secret_key, context.options)

    def __repr__(self) -> str:
        return f"StripeAdapter(account_id={self._context.account_id}, mode={self._context.mode!r})"

    # -- account ---------------------------------------------------------------------------

    async def check_credentials(self) -> None:
        problem = key_problem(self._credentials.secret_key, self._context.mode)
        if problem:
            raise InvalidCredentialsError(problem, code="key_format")
        async with stripe_errors(credentials_check=True):
            await self._client.v1.balance.retrieve_async()

    # -- customers -------------------------------------------------------------------------

    def _customer_params(self, customer: CustomerData, *, update: bool) -> Params:
        metadata = {**customer.metadata, "billplane_customer_id": str(customer.customer_id)}
        params: Params = {"metadata": metadata}
        for field, value in (("email", customer.email), ("name", customer.name)):
            if value is not None:
                params[field] = value
            elif update:
                params[field] = ""  # Stripe's way of clearing a field
        return params

    async def ensure_customer(self, customer: CustomerData, *, idempotency_key: str) -> ProviderRef:
        async with stripe_errors():
            created = await self._client.v1.customers.create_async(
                _sdk(self._customer_params(customer, update=False)), _options(idempotency_key)
            )
        return ProviderRef(provider_id=created.id)

    async def update_customer(self, provider_customer_id: str, customer: CustomerData, *, idempotency_key: str) -> None:
        async with stripe_errors():
            await self._client.v1.customers.update_async(
                provider_customer_id, _sdk(self._customer_params(customer, update=True)), _options(idempotency_key)
            )

    async def delete_customer(self, provider_customer_id: str, *, idempotency_key: str) -> None:
        del idempotency_key  # Stripe ignores keys on DELETE; deleting twice is handled below
        try:
            await self._client.v1.customers.delete_async(provider_customer_id)
        except stripe.InvalidRequestError as error:
            if error.code != "resource_missing":
                raise translate(error) from error
        except stripe.StripeError as error:
            raise translate(error) from error

    # -- catalog ---------------------------------------------------------------------------

    async def ensure_product(self, product: ProductData, *, idempotency_key: str) -> ProviderRef:
        params: Params = {
            "name": product.name,
            "active": product.active,
            "metadata": {"billplane_product_id": str(product.product_id)},
        }
        if product.description:
            params["description"] = product.description
        async with stripe_errors():
            created = await self._client.v1.products.create_async(_sdk(params), _options(idempotency_key))
        return ProviderRef(provider_id=created.id)

    async def update_product(self, provider_product_id: str, product: ProductData, *, idempotency_key: str) -> None:
        """Name, description and ``active`` as billplane has them now: the name is what Stripe's
        invoices and receipts show for the subscriptions it bills."""
        async with stripe_errors():
            await self._client.v1.products.update_async(
                provider_product_id, _sdk(catalog.product_update_params(product)), _options(idempotency_key)
            )

    async def set_price_active(self, provider_price_id: str, *, active: bool, idempotency_key: str) -> None:
        """An archived price (``active=false``) starts no new subscription; those that have it renew as before."""
        async with stripe_errors():
            await self._client.v1.prices.update_async(provider_price_id, {"active": active}, _options(idempotency_key))

    async def _meter(self, price: PriceData, idempotency_key: str) -> str:
        """The plan's Billing Meter: found by its event name, or created."""
        params = catalog.meter_params(self._context.tenant_id, price)
        listed = await self._client.v1.billing.meters.list_async({"status": "active", "limit": 100})
        async for meter in listed.auto_paging_iter():
            if meter.event_name == params["event_name"]:
                return meter.id
        created = await self._client.v1.billing.meters.create_async(_sdk(params), _options(idempotency_key, "meter"))
        return created.id

    async def ensure_price(self, price: PriceData, *, idempotency_key: str) -> ProviderRef:
        meter_id = None
        async with stripe_errors():
            if price.pricing_model == "metered":
                meter_id = await self._meter(price, idempotency_key)
            params = catalog.price_params(price, meter_id=meter_id)
            created = await self._client.v1.prices.create_async(_sdk(params), _options(idempotency_key))
        return ProviderRef(provider_id=created.id)

    # -- subscriptions ---------------------------------------------------------------------

    async def _price_is_metered(self, price_id: str) -> bool:
        return subscriptions.is_metered(_plain(await self._client.v1.prices.retrieve_async(price_id)))

    async def create_subscription(
        self, subscription: SubscriptionData, *, idempotency_key: str
    ) -> ProviderSubscription:
        """Start the subscription, unless an earlier call already did.

        A create whose every answer was lost may have created it; a later sync by hand asks again
        under a new idempotency key, which Stripe would take as a second subscription, billing the
        customer twice. So the customer's subscriptions are listed first (a strongly consistent
        read, never the Search API) and one carrying this billplane subscription's id and tenant,
        and not ended, is the answer.
        """
        subscriptions.check_metadata_size(subscription.metadata)
        async with stripe_errors():
            earlier = await self._created_earlier(subscription)
            if earlier is not None:
                return subscriptions.to_provider(earlier)
            metered = await self._price_is_metered(subscription.provider_price_id)
            params: Params = {
                "customer": subscription.provider_customer_id,
                "items": [
                    subscriptions.item_params(subscription.provider_price_id, subscription.quantity, metered=metered)
                ],
                "metadata": {
                    **subscription.metadata,
                    **subscriptions.own_metadata(subscription.subscription_id, self._context.tenant_id),
                },
            }
            if subscription.trial_end is not None:
                params["trial_end"] = int(subscription.trial_end.timestamp())
            created = await self._client.v1.subscriptions.create_async(_sdk(params), _options(idempotency_key))
        return subscriptions.to_provider(_plain(created))

    async def _created_earlier(self, subscription: SubscriptionData) -> dict[str, Any] | None:
        params: Params = {"customer": subscription.provider_customer_id, "status": "all", "limit": 100}
        listed = await self._client.v1.subscriptions.list_async(_sdk(params))
        async for found in listed.auto_paging_iter():
            plain = _plain(found)
            if subscriptions.is_created_for(plain, subscription.subscription_id, self._context.tenant_id):
                # Changed while unmirrored (its quantity, say): Stripe would bill the old terms.
                if differs := subscriptions.differs(plain, subscription.provider_price_id, subscription.quantity):
                    raise ProviderError(
                        f"Stripe already has subscription {plain.get('id')} for billplane subscription "
                        f"{subscription.subscription_id}, made by an earlier call whose answer was lost, and it "
                        f"differs from this one ({differs}): cancel it at Stripe or make it match, then sync again",
                        code="subscription_differs",
                    )
                return plain
        return None

    async def update_subscription(
        self, provider_subscription_id: str, change: SubscriptionChange, *, idempotency_key: str
    ) -> ProviderSubscription:
        behavior = subscriptions.proration_behavior(change.proration)
        async with stripe_errors():
            current = _plain(await self._client.v1.subscriptions.retrieve_async(provider_subscription_id))
            item = subscriptions.first_item(current)
            if item is None:
                raise ProviderError("the Stripe subscription has no item to change", code="no_subscription_item")
            price_id = change.provider_price_id or str(item["price"]["id"])
            quantity = change.quantity if change.quantity is not None else item.get("quantity") or 1
            metered = await self._price_is_metered(price_id)
            item_change = {"id": item["id"], **subscriptions.item_params(price_id, quantity, metered=metered)}
            if price_id == str(item["price"]["id"]):
                # Kept, not chosen again: Stripe takes only an active price for an item's `price`, and
                # a plan archived in billplane (its price archived here) keeps its subscriptions.
                del item_change["price"]
            updated = await self._client.v1.subscriptions.update_async(
                provider_subscription_id,
                _sdk({"items": [item_change], "proration_behavior": behavior}),
                _options(idempotency_key),
            )
        return subscriptions.to_provider(_plain(updated))

    async def update_subscription_metadata(
        self, provider_subscription_id: str, metadata: dict[str, str], *, idempotency_key: str
    ) -> None:
        """The tenant's metadata, as billplane has it now: keys it no longer has are removed,
        whoever set them at Stripe; billplane's own ids stay."""
        subscriptions.check_metadata_size(metadata)
        async with stripe_errors():
            current = _plain(await self._client.v1.subscriptions.retrieve_async(provider_subscription_id))
            changes = subscriptions.metadata_changes(current.get("metadata"), metadata)
            if not changes:
                return  # already so (a retry whose first call was made)
            # What is sent depends on what Stripe has, so a retry after a lost answer sends other
            # parameters, which Stripe refuses under the first key (idempotency_error). Setting
            # metadata is idempotent in itself: each set of parameters has a key of its own.
            digest = hashlib.sha256(json.dumps(changes, sort_keys=True).encode()).hexdigest()[:16]
            await self._client.v1.subscriptions.update_async(
                provider_subscription_id, _sdk({"metadata": changes}), _options(idempotency_key, digest)
            )

    async def cancel_subscription(
        self, provider_subscription_id: str, *, at_period_end: bool, idempotency_key: str
    ) -> ProviderSubscription:
        async with stripe_errors():
            if at_period_end:
                updated = await self._client.v1.subscriptions.update_async(
                    provider_subscription_id, {"cancel_at_period_end": True}, _options(idempotency_key)
                )
                return subscriptions.to_provider(_plain(updated))
            current = _plain(await self._client.v1.subscriptions.retrieve_async(provider_subscription_id))
            if current.get("status") in {"canceled", "incomplete_expired"}:
                return subscriptions.to_provider(current)  # a retry after Stripe already canceled it
            canceled = await self._client.v1.subscriptions.cancel_async(provider_subscription_id)
        return subscriptions.to_provider(_plain(canceled))

    async def undo_cancel(self, provider_subscription_id: str, *, idempotency_key: str) -> ProviderSubscription:
        async with stripe_errors():
            updated = await self._client.v1.subscriptions.update_async(
                provider_subscription_id, {"cancel_at_period_end": False}, _options(idempotency_key)
            )
        return subscriptions.to_provider(_plain(updated))

    async def pause_subscription(self, provider_subscription_id: str, *, idempotency_key: str) -> ProviderSubscription:
        # void: invoices of the paused period are voided, so nothing is owed for it on resume.
        params: Params = {"pause_collection": {"behavior": "void"}}
        async with stripe_errors():
            updated = await self._client.v1.subscriptions.update_async(
                provider_subscription_id,
                _sdk(params),
                _options(idempotency_key),
            )
        return subscriptions.to_provider(_plain(updated))

    async def resume_subscription(self, provider_subscription_id: str, *, idempotency_key: str) -> ProviderSubscription:
        async with stripe_errors():
            updated = await self._client.v1.subscriptions.update_async(
                provider_subscription_id, {"pause_collection": ""}, _options(idempotency_key)
            )
        return subscriptions.to_provider(_plain(updated))

    # -- payment methods -------------------------------------------------------------------

    async def attach_payment_method(
        self, token: str, provider_customer_id: str | None, *, idempotency_key: str, default: bool = False
    ) -> ProviderPaymentMethod:
        """Attach the PaymentMethod ``token`` (made by Stripe.js, Elements or the Dashboard) to the
        customer, so that off-session charges may use it; ``default``: also as the customer's
        ``invoice_settings.default_payment_method``, which Stripe's own invoices charge.

        It is retrieved first, and attached only when it belongs to no customer yet: one attached
        to this customer already (a retry, under any key) is answered as it is, and one of another
        customer is refused here rather than by an attach whose error Stripe does not document.
        """
        method = await self._attach(token, provider_customer_id, idempotency_key)
        if default and provider_customer_id is not None:
            await self._make_default(provider_customer_id, method.provider_payment_method_id, idempotency_key)
        return method

    async def _make_default(self, customer_id: str, method_id: str, idempotency_key: str) -> None:
        """The customer's ``invoice_settings.default_payment_method`` set to the method, unless it
        is already. The update's key names the default it replaces: Stripe replays what it answered
        a key for a day, so with the attach's key alone, a method made the default again after
        another (A, B, then A) replayed A's first update, and B stayed Stripe's default."""
        async with stripe_errors():
            customer = _plain(await self._client.v1.customers.retrieve_async(customer_id))
            current = payment_methods.customer_default(customer)
            if current == method_id:
                return  # a retry whose update went through, or the default already
            settings = {"invoice_settings": {"default_payment_method": method_id}}
            await self._client.v1.customers.update_async(
                customer_id, _sdk(settings), _options(idempotency_key, f"default-after-{current or 'none'}")
            )

    async def _attach(
        self, token: str, provider_customer_id: str | None, idempotency_key: str
    ) -> ProviderPaymentMethod:
        if not token.strip():
            raise ProviderError("a payment method token is required", code="payment_method_required")
        if provider_customer_id is None:
            # Stripe keeps a reusable payment method only on a customer of its own.
            raise ProviderError(
                f"payment method {token!r} cannot be attached yet: the customer is not at this Stripe "
                "account; sync the customer to Stripe first, then register the payment method again",
                code=CUSTOMER_NOT_SYNCED,
            )
        found = await self._retrieve_payment_method(token)
        owner = payment_methods.owner(found)
        if owner == provider_customer_id:
            return payment_methods.to_provider(found)
        if owner is not None:
            # The other customer's id stays out: one Stripe account may serve several tenants.
            raise ProviderError(
                f"payment method {token!r} is attached to another Stripe customer; a payment method "
                "belongs to one customer only: collect the payment details again for this customer",
                code="payment_method_of_another_customer",
            )
        async with stripe_errors():
            attached = await self._client.v1.payment_methods.attach_async(
                token, {"customer": provider_customer_id}, _options(idempotency_key)
            )
        return payment_methods.to_provider(_plain(attached))

    async def detach_payment_method(
        self, provider_payment_method_id: str, provider_customer_id: str | None, *, idempotency_key: str
    ) -> None:
        """Detach the PaymentMethod from the customer (``POST /v1/payment_methods/{id}/detach``),
        and see that it is no longer the customer's ``invoice_settings.default_payment_method``,
        which Stripe's own invoices charge.

        It is retrieved first: one of another customer, or unknown to this account, is left as it
        is. One of no customer is detached already (a retry, or a detach in the Dashboard), so only
        the default is seen to. Stripe's reference does not say that a detach clears the
        customer's default, so the customer is read after the detach and the default cleared when
        it still names the method: a retry whose detach went through, and whose clearing did not,
        clears it then.
        """
        method_id = provider_payment_method_id
        if not method_id.strip():
            raise ProviderError("a payment method id is required", code="payment_method_required")
        if provider_customer_id is None:
            return  # the customer is not at Stripe: no method of its to detach
        found = await self._payment_method_if_any(method_id)
        owner = payment_methods.owner(found) if found is not None else None
        if found is None or owner not in {None, provider_customer_id}:
            return
        async with stripe_errors():
            if owner == provider_customer_id:
                await self._client.v1.payment_methods.detach_async(method_id, options=_options(idempotency_key))
            await self._clear_default(provider_customer_id, method_id, idempotency_key)

    async def _payment_method_if_any(self, method_id: str) -> dict[str, Any] | None:
        """The PaymentMethod, or None when this account has none with this id."""
        try:
            async with stripe_errors():
                return _plain(await self._client.v1.payment_methods.retrieve_async(method_id))
        except ProviderError as error:
            if error.code == "resource_missing":
                return None
            raise

    async def _clear_default(self, customer_id: str, method_id: str, idempotency_key: str) -> None:
        """Clear the customer's ``invoice_settings.default_payment_method`` if it is ``method_id``."""
        try:
            customer = _plain(await self._client.v1.customers.retrieve_async(customer_id))
        except stripe.InvalidRequestError as error:
            if error.code == "resource_missing":
                return  # a customer this account does not know has no default to clear
            raise
        if payment_methods.customer_default(customer) != method_id:
            return  # another default, none, or Stripe cleared it with the detach
        settings: Params = {"invoice_settings": {"default_payment_method": ""}}  # "" clears it
        await self._client.v1.customers.update_async(customer_id, _sdk(settings), _options(idempotency_key, "default"))

    async def _retrieve_payment_method(self, token: str) -> dict[str, Any]:
        try:
            async with stripe_errors():
                return _plain(await self._client.v1.payment_methods.retrieve_async(token))
        except ProviderError as error:
            if error.code == "resource_missing":
                raise ProviderError(
                    f"this Stripe account has no payment method {token!r} ({error.message}); was it made "
                    "with this account's publishable key, in the same mode (test or live)?",
                    code="resource_missing",
                ) from error
            raise

    # -- money -----------------------------------------------------------------------------

    async def _default_payment_method(self, customer_id: str) -> str:
        customer = _plain(await self._client.v1.customers.retrieve_async(customer_id))
        method = payment_methods.customer_default(customer)
        if method is None:
            raise ProviderError(
                "the Stripe customer has no default payment method (invoice_settings.default_payment_method)",
                code="no_default_payment_method",
            )
        return method

    async def charge(self, request: ChargeRequest, *, idempotency_key: str) -> ChargeResult:
        try:
            if request.provider_invoice_id:
                invoice = await self._client.v1.invoices.pay_async(
                    request.provider_invoice_id,
                    {"off_session": True, "expand": ["payments"]},
                    _options(idempotency_key),
                )
                return payments.charge_from_invoice(_plain(invoice))
            method = request.payment_method
            if method is None:
                if not request.provider_customer_id:
                    raise ProviderError("a charge needs a payment method or a customer", code="no_payment_method")
                method = await self._default_payment_method(request.provider_customer_id)
            params = payments.payment_intent_params(
                request, method, request.provider_customer_id, tenant_id=self._context.tenant_id
            )
            intent = _plain(await self._client.v1.payment_intents.create_async(_sdk(params), _options(idempotency_key)))
            if intent.get("status") in payments.WAITING_ON_CUSTOMER:
                return await self._abandon(intent, idempotency_key)
            return payments.charge_from_payment_intent(intent)
        except stripe.CardError as error:
            # The invoice stays open and billplane's dunning takes over from the failed payment.
            fallback = request.provider_invoice_id or f"declined:{idempotency_key}"
            return payments.declined(error_body(error), request, fallback)
        except stripe.StripeError as error:
            raise translate(error) from error

    async def _abandon(self, intent: dict[str, Any], idempotency_key: str) -> ChargeResult:
        """Cancel a PaymentIntent left waiting on the customer, whom an off-session charge cannot
        ask: recorded failed, dunning charges again, and this one must not move money after that.

        Any error but "no longer cancelable" raises, so that the outbox retries (the create then
        replays this same intent) rather than record failed a payment that may still succeed.
        """
        try:
            canceled = await self._client.v1.payment_intents.cancel_async(
                intent["id"], {"cancellation_reason": "abandoned"}, _options(idempotency_key, "cancel")
            )
        except stripe.InvalidRequestError as error:
            if error.code != "payment_intent_unexpected_state":
                raise
            # The customer completed it, or it was canceled, meanwhile: that is the outcome.
            current = await self._client.v1.payment_intents.retrieve_async(intent["id"])
            return payments.charge_from_payment_intent(_plain(current))
        return payments.abandoned(_plain(canceled), str(intent["status"]))

    async def find_payment(
        self, request: ChargeRequest, *, idempotency_key: str, created_after: datetime
    ) -> ChargeResult | None:
        """The PaymentIntent ``charge`` created, found by listing (strongly consistent), never by
        the Search API (eventually consistent, and not offered in every region).

        An invoice payment is the invoice's own: paid, or the PaymentIntent of its last attempt,
        or none. Any other charge is a PaymentIntent carrying ``metadata.billplane_payment_id``:
        the customer's PaymentIntents created since ``created_after`` are listed; a charge made
        without a customer is searched among the account's PaymentIntents of that time.
        """
        del idempotency_key  # Stripe cannot be asked by idempotency key; the metadata names the payment
        async with stripe_errors():
            if request.provider_invoice_id:
                return await self._invoice_charge(request.provider_invoice_id)
            params: Params = {"created": {"gte": int(created_after.timestamp())}, "limit": 100}
            if request.provider_customer_id:
                params["customer"] = request.provider_customer_id
            listed = await self._client.v1.payment_intents.list_async(_sdk(params))
            found = [_plain(intent) async for intent in listed.auto_paging_iter()]
        tenant_id = self._context.tenant_id
        return payments.best_match(
            [intent for intent in found if payments.is_charge_of(intent, request, tenant_id=tenant_id)]
        )

    async def charge_status(self, provider_payment_id: str) -> ChargeResult | None:
        """A PaymentIntent (``pi_``) or an invoice's payment (``in_``, the id billplane keeps for an
        invoice Stripe has not attempted) as it stands now; None for an id Stripe does not know or
        of another kind, and for an invoice that will not be paid (void, uncollectible)."""
        try:
            async with stripe_errors():
                if provider_payment_id.startswith("pi_"):
                    intent = await self._client.v1.payment_intents.retrieve_async(provider_payment_id)
                    return payments.charge_from_payment_intent(_plain(intent))
                if provider_payment_id.startswith("in_"):
                    invoice = await self._invoice(provider_payment_id)
                    if invoice.get("status") in {"void", "uncollectible"}:
                        return None  # nothing will be paid: the tenant settles it
                    return await self._invoice_payment(invoice) or payments.charge_from_invoice(invoice)
        except ProviderError as error:
            if error.code == "resource_missing":
                return None
            raise
        return None

    async def _invoice(self, invoice_id: str) -> dict[str, Any]:
        return _plain(await self._client.v1.invoices.retrieve_async(invoice_id, {"expand": ["payments"]}))

    async def _invoice_charge(self, invoice_id: str) -> ChargeResult | None:
        return await self._invoice_payment(await self._invoice(invoice_id))

    async def _invoice_payment(self, invoice: dict[str, Any]) -> ChargeResult | None:
        """How an invoice's payment stands: paid, or its last attempt's PaymentIntent; None when it
        was never attempted (no money moved)."""
        if invoice.get("status") == "paid":
            return payments.charge_from_invoice(invoice)
        intent_id = payments.invoice_payment_intent(invoice)
        if intent_id is None:
            return None
        intent = _plain(await self._client.v1.payment_intents.retrieve_async(intent_id))
        return payments.charge_from_payment_intent(intent)

    async def refund(self, request: RefundRequest, *, idempotency_key: str) -> RefundResult:
        async with stripe_errors():
            created = await self._client.v1.refunds.create_async(
                _sdk(payments.refund_params(request, tenant_id=self._context.tenant_id)),
                _options(idempotency_key),
            )
        return payments.refund_result(_plain(created))

    async def find_refund(
        self, request: RefundRequest, *, idempotency_key: str, created_after: datetime
    ) -> RefundResult | None:
        """The Refund ``refund`` created, found among the payment's refunds since ``created_after``
        by its ``metadata.billplane_refund_id``: a list (strongly consistent), paged to the end,
        never the Search API (eventually consistent: a refund made seconds ago may be missing).

        A payment id that is neither a PaymentIntent nor a Charge raises ``ProviderError`` before
        any call: with no list to read, None would not be certain. The payment is retrieved
        before its refunds are listed: Stripe may list no refunds for a payment this account does
        not know (the tenant connected another account's keys), which must not read as "no refund".
        """
        del idempotency_key  # Stripe cannot be asked by idempotency key; the metadata names the refund
        params = payments.refund_list_params(request, created_after)
        await self._retrieve_refunded_payment(request, by_charge="charge" in params)
        async with stripe_errors():
            listed = await self._client.v1.refunds.list_async(_sdk(params))
            found = [_plain(refund) async for refund in listed.auto_paging_iter()]
        return payments.matching_refund(found, request, tenant_id=self._context.tenant_id)

    async def _retrieve_refunded_payment(self, request: RefundRequest, *, by_charge: bool) -> None:
        """Raise ``ProviderError`` (code ``refund_lookup_unknown_payment``) unless this account has
        the payment (a Charge when ``by_charge``, else a PaymentIntent)."""
        payment = request.provider_payment_id
        try:
            async with stripe_errors():
                if by_charge:
                    await self._client.v1.charges.retrieve_async(payment)
                else:
                    await self._client.v1.payment_intents.retrieve_async(payment)
        except ProviderError as error:
            if error.code == "resource_missing":
                raise ProviderError(
                    f"refund {request.refund_id} of {payment!r} cannot be looked up at Stripe: this Stripe "
                    f"account has no such payment ({error.message}); were the account's keys replaced "
                    "with another account's?",
                    code="refund_lookup_unknown_payment",
                ) from error
            raise

    async def refund_status(self, provider_refund_id: str) -> RefundResult | None:
        """A Refund (``re_``, or ``pyr_`` for some payment methods) as it stands now, read the way
        its webhooks are; None for an id Stripe does not know or of another kind."""
        if not provider_refund_id.startswith(("re_", "pyr_")):
            return None  # no Refund behind it: nothing to ask
        try:
            async with stripe_errors():
                refund = await self._client.v1.refunds.retrieve_async(provider_refund_id)
        except ProviderError as error:
            if error.code == "resource_missing":
                return None
            raise
        return payments.refund_result(_plain(refund))

    async def report_usage(self, usage: UsageReport, *, idempotency_key: str) -> None:
        try:
            await self._client.v1.billing.meter_events.create_async(
                _sdk(meter_events.meter_event_params(self._context.tenant_id, usage)),
                _options(idempotency_key),
            )
        except stripe.InvalidRequestError as error:
            # Stripe keeps the first event of an identifier; should it refuse the repeat rather
            # than drop it, the usage is counted all the same, which is what billplane asked.
            if not meter_events.is_duplicate(error.code, error_body(error)):
                raise translate(error) from error
        except stripe.StripeError as error:
            raise translate(error) from error

    # -- webhooks --------------------------------------------------------------------------

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[ProviderEvent]:
        secrets = [s for s in (self._context.webhook_secret, self._context.previous_webhook_secret) if s]
        event = webhooks.verify(body, headers, secrets)
        return webhooks.normalize(event, tenant_id=self._context.tenant_id)
