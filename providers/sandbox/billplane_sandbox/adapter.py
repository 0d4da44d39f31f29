"""The sandbox adapter: answers like a payment processor, computed from the request alone.

Nothing leaves the process (except the optional webhook of a pending payment), so any number of
processes answer alike: provider ids derive from the account and the idempotency key (``ids``), and
what a later call needs travels inside the ids. The exceptions are ``find_payment`` and
``find_refund``: whether a charge or refund arrived cannot be computed, so they answer from the
``ledger`` of charges and refunds this process made.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime

import msgspec

from billplane.plugins import (
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
    RetryableProviderError,
    SubscriptionChange,
    SubscriptionData,
    UnsupportedOperationError,
    UsageReport,
)
from billplane_sandbox import delivery, events
from billplane_sandbox.catalog import check_currency, check_metadata, check_price
from billplane_sandbox.credentials import SandboxCredentials, key_problem
from billplane_sandbox.ids import make_id, parse_id
from billplane_sandbox.ledger import LEDGER, REFUNDS, Charge, Refund
from billplane_sandbox.ledger import now as ledger_now
from billplane_sandbox.payment_methods import (
    ATTACHED_SEPARATOR,
    BY_CODE,
    PAYMENT_METHODS,
    SandboxPaymentMethod,
    method_of,
)
from billplane_sandbox.signing import verify
from billplane_sandbox.subscriptions import interval_param, price_interval, state, subscription_params
from billplane_sandbox.wire import decode, normalize

DEFAULT_PENDING_DELAY = 2.0


def pending_delay(options: Mapping[str, str]) -> float:
    raw = options.get("pending_delay_seconds")
    if raw is None:
        return DEFAULT_PENDING_DELAY
    try:
        delay = float(raw)
    except ValueError:
        delay = -1.0
    if not delay >= 0:  # also refuses NaN
        raise ValueError("BILLPLANE_PROVIDER_SANDBOX_PENDING_DELAY_SECONDS must be a number of seconds, 0 or more")
    return delay


class SandboxAdapter:
    """One account's sandbox. Construct it through the plugin (``create_adapter``)."""

    def __init__(self, context: AdapterContext, credentials: SandboxCredentials) -> None:
        self._account = context.account_id
        self._api_key = credentials.api_key
        self._webhook_secret = context.webhook_secret
        self._webhook_endpoint = delivery.endpoint(context.options.get("webhook_url"), context.account_id)
        self._pending_delay = pending_delay(context.options)

    def _authorize(self, idempotency_key: str | None = None) -> None:
        # A processor refuses every call made with a bad key, not only the credentials check.
        if problem := key_problem(self._api_key):
            raise InvalidCredentialsError(problem)
        if idempotency_key is not None and not idempotency_key.strip():
            raise ProviderError(
                "an idempotency key is required on every call that changes something", code="invalid_request"
            )

    async def check_credentials(self) -> None:
        self._authorize()

    async def ensure_customer(self, customer: CustomerData, *, idempotency_key: str) -> ProviderRef:
        self._authorize(idempotency_key)
        check_metadata(customer.metadata)
        return ProviderRef(provider_id=make_id(self._account, "cus", idempotency_key))

    async def update_customer(self, provider_customer_id: str, customer: CustomerData, *, idempotency_key: str) -> None:
        self._authorize(idempotency_key)
        parse_id(self._account, "cus", provider_customer_id)
        check_metadata(customer.metadata)

    async def delete_customer(self, provider_customer_id: str, *, idempotency_key: str) -> None:
        self._authorize(idempotency_key)
        parse_id(self._account, "cus", provider_customer_id)

    async def ensure_product(self, product: ProductData, *, idempotency_key: str) -> ProviderRef:
        self._authorize(idempotency_key)
        if not product.name.strip():
            raise ProviderError("a product needs a name", code="invalid_request")
        return ProviderRef(provider_id=make_id(self._account, "prod", idempotency_key))

    async def ensure_price(self, price: PriceData, *, idempotency_key: str) -> ProviderRef:
        self._authorize(idempotency_key)
        parse_id(self._account, "prod", price.provider_product_id)
        check_price(price)
        interval = interval_param(price.billing_interval, price.interval_count)
        return ProviderRef(provider_id=make_id(self._account, "price", idempotency_key, interval))

    # The sandbox keeps no catalog: an edit is accepted once its ids are this account's, and changes
    # nothing a later call could see (a price made inactive still takes subscriptions here).

    async def update_product(self, provider_product_id: str, product: ProductData, *, idempotency_key: str) -> None:
        self._authorize(idempotency_key)
        parse_id(self._account, "prod", provider_product_id)
        if not product.name.strip():
            raise ProviderError("a product needs a name", code="invalid_request")

    async def set_price_active(self, provider_price_id: str, *, active: bool, idempotency_key: str) -> None:
        del active  # nothing to keep it in
        self._authorize(idempotency_key)
        parse_id(self._account, "price", provider_price_id)

    async def create_subscription(
        self, subscription: SubscriptionData, *, idempotency_key: str
    ) -> ProviderSubscription:
        self._authorize(idempotency_key)
        parse_id(self._account, "cus", subscription.provider_customer_id)
        interval = price_interval(self._account, subscription.provider_price_id)
        _check_quantity(subscription.quantity)
        params = subscription_params(interval, subscription.trial_end, datetime.now(UTC))
        provider_id = make_id(self._account, "sub", idempotency_key, *params)
        return state(self._account, provider_id)

    async def update_subscription(
        self, provider_subscription_id: str, change: SubscriptionChange, *, idempotency_key: str
    ) -> ProviderSubscription:
        self._authorize(idempotency_key)
        interval = None
        if change.provider_price_id is not None:
            interval = price_interval(self._account, change.provider_price_id)
        if change.quantity is not None:
            _check_quantity(change.quantity)
        return state(self._account, provider_subscription_id, interval=interval)

    async def update_subscription_metadata(
        self, provider_subscription_id: str, metadata: dict[str, str], *, idempotency_key: str
    ) -> None:
        del metadata  # nothing to keep it in
        self._authorize(idempotency_key)
        parse_id(self._account, "sub", provider_subscription_id)

    async def cancel_subscription(
        self, provider_subscription_id: str, *, at_period_end: bool, idempotency_key: str
    ) -> ProviderSubscription:
        self._authorize(idempotency_key)
        if at_period_end:
            return state(self._account, provider_subscription_id, cancel_at_period_end=True)
        return state(self._account, provider_subscription_id, canceled=True)

    async def undo_cancel(self, provider_subscription_id: str, *, idempotency_key: str) -> ProviderSubscription:
        self._authorize(idempotency_key)
        return state(self._account, provider_subscription_id)

    async def pause_subscription(self, provider_subscription_id: str, *, idempotency_key: str) -> ProviderSubscription:
        self._authorize(idempotency_key)
        return state(self._account, provider_subscription_id, status="paused")

    async def resume_subscription(self, provider_subscription_id: str, *, idempotency_key: str) -> ProviderSubscription:
        self._authorize(idempotency_key)
        return state(self._account, provider_subscription_id)

    async def attach_payment_method(
        self, token: str, provider_customer_id: str | None, *, idempotency_key: str, default: bool = False
    ) -> ProviderPaymentMethod:
        """Any of the sandbox's test payment methods, for any customer, under an id of the
        customer's own (``ATTACHED_SEPARATOR``); the same answer for the same customer and key.
        ``default`` changes nothing: the sandbox keeps no default methods (each charge names one)."""
        del default
        self._authorize(idempotency_key)
        if provider_customer_id is not None:
            parse_id(self._account, "cus", provider_customer_id)
        if ATTACHED_SEPARATOR in token or token not in PAYMENT_METHODS:
            known = ", ".join(sorted(PAYMENT_METHODS))
            raise ProviderError(
                f"no such payment method: {token!r}; the sandbox's test payment methods are {known}",
                code="resource_missing",
            )
        owner = provider_customer_id or idempotency_key
        suffix = hashlib.sha256(f"{self._account}:{owner}".encode()).hexdigest()[:12]
        attached = f"{token}{ATTACHED_SEPARATOR}{suffix}"
        return ProviderPaymentMethod(provider_payment_method_id=attached, type="card", brand="sandbox")

    async def detach_payment_method(
        self, provider_payment_method_id: str, provider_customer_id: str | None, *, idempotency_key: str
    ) -> None:
        """Nothing to undo: the sandbox keeps no attachments (an attached id is computed from the
        token and the customer, ``attach_payment_method``), so every detach succeeds, a retry, a
        method of another customer and an id the sandbox never gave alike, as the contract has it.
        The key and customer are checked as ``attach_payment_method`` checks them; a detached id
        still charges as its token does, the sandbox having nothing to refuse it by.
        """
        self._authorize(idempotency_key)
        if provider_customer_id is not None:
            parse_id(self._account, "cus", provider_customer_id)
        if not provider_payment_method_id.strip():
            raise ProviderError("a payment method id is required", code="payment_method_required")

    async def charge(self, request: ChargeRequest, *, idempotency_key: str) -> ChargeResult:
        self._authorize(idempotency_key)
        if request.payment_method is None:
            raise ProviderError(
                "the sandbox keeps no default payment methods: name one of its test payment methods",
                code="payment_method_required",
            )
        method = method_of(request.payment_method)
        if method is None:
            known = ", ".join(sorted(PAYMENT_METHODS))
            raise ProviderError(
                f"no such payment method: {request.payment_method!r}; the sandbox's test payment methods are {known}",
                code="resource_missing",
            )
        if request.amount < 1:
            raise ProviderError("a charge's amount must be at least 1 minor unit", code="invalid_request")
        check_currency(request.currency)
        if request.provider_customer_id is not None:
            parse_id(self._account, "cus", request.provider_customer_id)
        if method.network == "unreachable":
            raise RetryableProviderError(
                "could not connect to the sandbox (pm_sandbox_unreachable): no charge was made"
            )
        result = self._charged(request, method, idempotency_key)
        provider_id = result.provider_payment_id
        LEDGER.record(self._account, request.payment_id, Charge(idempotency_key, result, method, ledger_now()))
        if method.immediate == "pending":
            self._settle_later(provider_id, method)
        if method.network == "answer_lost":
            raise RetryableProviderError("the connection was reset before the sandbox's answer arrived")
        return result

    async def find_payment(
        self, request: ChargeRequest, *, idempotency_key: str, created_after: datetime
    ) -> ChargeResult | None:
        """The charge this process's sandbox made for the payment (``ledger``), as it stands now."""
        self._authorize()
        found = LEDGER.find(self._account, request.payment_id, idempotency_key, created_after.timestamp())
        if found is None:
            lost = method_of(request.payment_method)
            # The token says the charge was made and only its answer lost: any process can tell,
            # also one whose ledger never saw the charge (an API and workers in separate processes).
            if lost is not None and lost.network == "answer_lost":
                return self._charged(request, lost, idempotency_key)
            return None
        method, result = found.method, found.result
        if method.immediate == "pending" and ledger_now() - found.at >= self._pending_delay:
            failed = method.final == "failed"
            result = msgspec.structs.replace(
                result,
                status=method.final,
                failure_code=method.failure_code if failed else None,
                failure_message=method.failure_message if failed else None,
            )
        return result

    async def charge_status(self, provider_payment_id: str) -> ChargeResult | None:
        """A charge as it stands now, read from its id: a pending one has settled once
        ``pending_delay_seconds`` have passed since it was made (at once when this process did not
        make it: the id says how it ends). None for an id this account's sandbox never made."""
        self._authorize()
        try:
            params = parse_id(self._account, "pay", provider_payment_id)
        except ProviderError:
            return None
        method = BY_CODE.get(params[-1]) if len(params) == 3 else None  # noqa: PLR2004 - id layout
        if method is None:
            return None
        made = LEDGER.made(self._account, provider_payment_id)
        status = method.immediate
        if method.immediate == "pending" and (made is None or ledger_now() - made.at >= self._pending_delay):
            status = method.final
        failed = status == "failed"
        return ChargeResult(
            provider_payment_id=provider_payment_id,
            status=status,
            failure_code=method.failure_code if failed else None,
            failure_message=method.failure_message if failed else None,
        )

    def _charged(self, request: ChargeRequest, method: SandboxPaymentMethod, idempotency_key: str) -> ChargeResult:
        """What charging ``request`` with ``method`` answers: the same, whenever and wherever asked."""
        params = (str(request.amount), request.currency.lower(), method.code)
        return ChargeResult(
            provider_payment_id=make_id(self._account, "pay", idempotency_key, *params),
            status=method.immediate,
            failure_code=method.failure_code if method.immediate == "failed" else None,
            failure_message=method.failure_message if method.immediate == "failed" else None,
        )

    def _settle_later(self, provider_payment_id: str, method: SandboxPaymentMethod) -> None:
        if self._webhook_endpoint is None or not self._webhook_secret:
            return  # documented: without a webhook URL (and secret) the outcome is never sent
        secret = self._webhook_secret
        # The same payment always settles with the same event id: billplane stores it once.
        event_id = "evt_" + hashlib.sha256(f"settle\x00{provider_payment_id}".encode()).hexdigest()[:24]

        def build() -> events.SignedWebhook:
            if method.final == "succeeded":
                event = events.payment_succeeded(provider_payment_id, event_id=event_id)
            else:
                event = events.payment_failed(
                    provider_payment_id,
                    failure_code=method.failure_code or "payment_failed",
                    failure_message=method.failure_message,
                    event_id=event_id,
                )
            return events.sign(event, secret)

        delivery.in_background(self._pending_delay, self._webhook_endpoint, build)

    async def refund(self, request: RefundRequest, *, idempotency_key: str) -> RefundResult:
        self._authorize(idempotency_key)
        method, amount, currency = self._refunded_payment(request.provider_payment_id)
        if method.final != "succeeded":
            raise ProviderError("the payment did not succeed: there is nothing to refund", code="charge_not_refundable")
        if request.currency.lower() != currency:
            raise ProviderError(f"the payment is in {currency.upper()}, not {request.currency}", code="invalid_request")
        if not 0 < request.amount <= int(amount):
            raise ProviderError(
                f"a refund's amount must be between 1 and the payment's {amount} minor units", code="invalid_request"
            )
        result = self._refunded(idempotency_key)
        made = Refund(idempotency_key, result, ledger_now(), request.provider_payment_id)
        REFUNDS.record(self._account, request.refund_id, made)
        if method.refunds == "answer_lost":
            raise RetryableProviderError("the connection was reset before the sandbox's answer arrived")
        return result

    async def find_refund(
        self, request: RefundRequest, *, idempotency_key: str, created_after: datetime
    ) -> RefundResult | None:
        """The refund this process's sandbox made for billplane's refund (``ledger``): the
        sandbox's refunds succeed when made."""
        self._authorize()
        method, _, _ = self._refunded_payment(request.provider_payment_id)
        found = REFUNDS.find(self._account, request.refund_id, idempotency_key, created_after.timestamp())
        if found is not None and found.provider_payment_id == request.provider_payment_id:
            return found.result
        # The token says every refund of the payment was made and only its answer lost: any
        # process can tell, also one whose ledger never saw the refund.
        return self._refunded(idempotency_key) if method.refunds == "answer_lost" else None

    def _refunded_payment(self, provider_payment_id: str) -> tuple[SandboxPaymentMethod, str, str]:
        """The payment a refund is of: its test payment method, amount and currency, from its id."""
        params = parse_id(self._account, "pay", provider_payment_id)
        amount, currency, code = params if len(params) == 3 else ("0", "", "")  # noqa: PLR2004 - id layout
        method = BY_CODE.get(code)
        if method is None or not amount.isdigit():
            raise ProviderError(f"no such payment: {provider_payment_id!r}", code="resource_missing")
        return method, amount, currency

    def _refunded(self, idempotency_key: str) -> RefundResult:
        """What a refund made with this key answers: the same, whenever and wherever asked."""
        return RefundResult(provider_refund_id=make_id(self._account, "re", idempotency_key), status="succeeded")

    async def refund_status(self, provider_refund_id: str) -> RefundResult | None:
        """A refund as it stands now: the sandbox's refunds succeed when made. None for an id this
        account's sandbox never made."""
        self._authorize()
        try:
            parse_id(self._account, "re", provider_refund_id)
        except ProviderError:
            return None
        return RefundResult(provider_refund_id=provider_refund_id, status="succeeded")

    async def report_usage(self, usage: UsageReport, *, idempotency_key: str) -> None:  # noqa: ARG002 - refused
        raise UnsupportedOperationError("usage reporting", "billplane bills sandbox accounts' usage itself")

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[ProviderEvent]:
        verify(self._webhook_secret, headers, body)
        return [normalize(decode(body))]


def _check_quantity(quantity: int) -> None:
    if quantity < 1:
        raise ProviderError("a subscription's quantity must be at least 1", code="invalid_request")
