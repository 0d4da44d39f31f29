"""billplane's adapter contract over PayPal's REST API (Subscriptions v1, Payments v2, webhooks).

Every POST carries billplane's idempotency key as ``PayPal-Request-Id``, except a subscription's
create, which carries one id per billplane subscription (``create_subscription``). PayPal's specs
declare the header, and so a replay of the first call's answer (ids kept 72 hours), only for
creating products, plans and subscriptions, a subscription's capture and a capture's refund: the
sync engine's retries never create a second one of those. Suspend, activate and cancel are not
replayed: a retry of one that worked is refused, and is done once a read shows the subscription in
the state asked for. Revise names the plan and quantity wanted, so sending it again is the same
revision.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

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
    ProviderRef,
    ProviderSubscription,
    RefundRequest,
    RefundResult,
    RetryableProviderError,
    SubscriptionChange,
    SubscriptionData,
    UnsupportedOperationError,
    UsageReport,
    WebhookVerificationError,
)
from billplane.plugins.contract import ChargeStatus
from billplane_paypal import catalog, events, refunds, subscriptions, webhooks
from billplane_paypal.client import DEFAULT_TIMEOUT, Json, PayPalClient
from billplane_paypal.credentials import PayPalCredentials, api_base
from billplane_paypal.money import to_minor, to_value

# verify-webhook-signature runs while PayPal waits for billplane's answer: fail fast (billplane
# then answers 503 and PayPal delivers again) rather than let PayPal time out.
VERIFY_TIMEOUT = 5.0
# The PayPal statuses in which each state change has nothing left to do.
_SUSPENDED = frozenset({"SUSPENDED"})
_ACTIVE = frozenset({"ACTIVE"})
_FINISHED = frozenset({"CANCELLED", "EXPIRED"})
# A Payments v2 capture's status; PENDING (an eCheck clearing, a review) waits.
_CAPTURE_STATUSES: dict[str, ChargeStatus] = {
    "COMPLETED": "succeeded",
    "PARTIALLY_REFUNDED": "succeeded",
    "REFUNDED": "succeeded",
    "PENDING": "pending",
    "DECLINED": "failed",
    "FAILED": "failed",
}
# The reference ``_charge_result`` makes for a capture PayPal accepted without naming it.
_UNNAMED_CAPTURE = "capture-"
_MISSING = frozenset({"INVALID_RESOURCE_ID", "RESOURCE_NOT_FOUND"})


def _id(value: str) -> str:
    """An id as one path segment: a payment method token comes from the tenant's request, and
    ``../`` in it must not reach another endpoint."""
    return quote(value, safe="")


def _timeout(options: Mapping[str, str]) -> float:
    try:
        value = float(options.get("timeout", DEFAULT_TIMEOUT))
    except ValueError:
        return DEFAULT_TIMEOUT
    return value if value > 0 else DEFAULT_TIMEOUT


class PayPalAdapter:
    def __init__(self, context: AdapterContext, credentials: PayPalCredentials) -> None:
        self._options = context.options
        self._tenant_id = context.tenant_id
        self._webhook_id = credentials.webhook_id
        self.api_base = api_base(context.mode, context.options)
        self._client = PayPalClient(self.api_base, credentials, timeout=_timeout(context.options))

    def __repr__(self) -> str:
        return f"PayPalAdapter({self._client!r})"

    async def check_credentials(self) -> None:
        await self._client.check_token()
        try:
            # A webhook id of another app (or a typo) would make every delivery fail verification
            # later, silently: refuse it now, while the tenant is connecting.
            webhook = await self._client.call("GET", f"/v1/notifications/webhooks/{_id(self._webhook_id)}")
        except RetryableProviderError:
            raise
        except ProviderError as exc:
            raise InvalidCredentialsError(
                f"PayPal knows no webhook {self._webhook_id!r} for this app: {exc.message}", code=exc.code
            ) from None
        # So would a webhook that leaves out an event billplane learns from: the payments it made,
        # refunds, a subscription PayPal suspended or canceled would never reach it.
        if missing := events.missing_event_types(webhook):
            raise InvalidCredentialsError(
                f"PayPal webhook {self._webhook_id!r} is not subscribed to {', '.join(missing)}: billplane "
                "learns payments, refunds and subscription changes from them; add them (or '*') to the webhook",
                code="webhook_event_types",
            )

    # PayPal has no customer object: the payer is whoever approves the subscription. A customer is a
    # local reference, made from the idempotency key so that a retry returns the same one.
    async def ensure_customer(self, customer: CustomerData, *, idempotency_key: str) -> ProviderRef:
        digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:16]
        return ProviderRef(provider_id=f"billplane-customer-{customer.customer_id}-{digest}")

    async def update_customer(self, provider_customer_id: str, customer: CustomerData, *, idempotency_key: str) -> None:  # noqa: ARG002
        return None  # nothing is kept at PayPal to update

    async def delete_customer(self, provider_customer_id: str, *, idempotency_key: str) -> None:  # noqa: ARG002
        return None  # nothing is kept at PayPal to delete

    async def ensure_product(self, product: ProductData, *, idempotency_key: str) -> ProviderRef:
        created = await self._client.call(
            "POST", "/v1/catalogs/products", request_id=idempotency_key, body=catalog.product_body(product)
        )
        return ProviderRef(provider_id=str(created["id"]))

    async def ensure_price(self, price: PriceData, *, idempotency_key: str) -> ProviderRef:
        body = catalog.plan_body(price, name=f"billplane plan {price.plan_id}")  # refuses before any call
        created = await self._client.call("POST", "/v1/billing/plans", request_id=idempotency_key, body=body)
        return ProviderRef(provider_id=str(created["id"]))

    async def update_product(self, provider_product_id: str, product: ProductData, *, idempotency_key: str) -> None:
        """The description, the one thing billplane mirrors that PayPal lets change: a catalog
        product's PATCH takes no name (nor any active state), so a rename stays in billplane.

        The product is read first and patched only where it differs, so a retry after a PATCH
        that went through (PayPal replays no PATCH answer) sends nothing.
        """
        path = f"/v1/catalogs/products/{_id(provider_product_id)}"
        patch = catalog.description_patch((await self._client.call("GET", path)).get("description"), product)
        if patch:
            await self._client.call("PATCH", path, request_id=idempotency_key, body=patch)

    async def set_price_active(self, provider_price_id: str, *, active: bool, idempotency_key: str) -> None:
        """Deactivate the billing plan (PayPal then starts no subscription on it; those it has go on),
        or activate it again."""
        path = f"/v1/billing/plans/{_id(provider_price_id)}"
        try:
            await self._client.call(
                "POST", f"{path}/{'activate' if active else 'deactivate'}", request_id=idempotency_key
            )
        except RetryableProviderError:
            raise
        except ProviderError:
            # PayPal replays no answer for these, and refuses a plan already in the state asked for
            # (PLAN_STATUS_INVALID): a retry of a call that worked. The plan says whether it is done.
            if (await self._client.call("GET", path)).get("status") != ("ACTIVE" if active else "INACTIVE"):
                raise

    async def _read_subscription(self, provider_subscription_id: str) -> Json:
        return await self._client.call("GET", f"/v1/billing/subscriptions/{_id(provider_subscription_id)}")

    async def _get_subscription(self, provider_subscription_id: str) -> ProviderSubscription:
        return subscriptions.from_paypal(await self._read_subscription(provider_subscription_id))

    async def create_subscription(
        self,
        subscription: SubscriptionData,
        *,
        idempotency_key: str,  # noqa: ARG002 - one request id per subscription instead (below)
    ) -> ProviderSubscription:
        """Start the subscription, unless an earlier call already did.

        A create whose every answer was lost may have made it, and a manual sync then sends a new
        row with a new key. PayPal cannot find the first by anything billplane sent, but replays
        it: every create of one billplane subscription carries the same ``PayPal-Request-Id``
        (``subscriptions.request_id``), so the answer is the first subscription, not a second one
        the customer could approve too. One that differs from what is asked now is refused.
        """
        body = subscriptions.create_body(subscription, self._options)
        created = await self._client.call(
            "POST",
            "/v1/billing/subscriptions",
            request_id=subscriptions.request_id(self._tenant_id, subscription.subscription_id),
            body=body,
        )
        if differs := subscriptions.differs(created, body):
            raise ProviderError(
                f"PayPal already has subscription {created.get('id')} for billplane subscription "
                f"{subscription.subscription_id}, made by an earlier call whose answer was lost, and it differs from "
                f"this one ({differs}): cancel it at PayPal, then cancel this subscription and create it again",
                code="subscription_differs",
            )
        # The create answer is the subscription waiting for approval, with its approve link.
        return subscriptions.from_paypal(created)

    async def update_subscription(
        self, provider_subscription_id: str, change: SubscriptionChange, *, idempotency_key: str
    ) -> ProviderSubscription:
        revised = await self._client.call(
            "POST",
            f"/v1/billing/subscriptions/{_id(provider_subscription_id)}/revise",
            request_id=idempotency_key,
            body=subscriptions.revise_body(change, self._options),
        )
        current = await self._get_subscription(provider_subscription_id)
        # A change PayPal wants the customer to consent to comes back with an approve link.
        consent = subscriptions.approve_link(revised)
        return msgspec.structs.replace(current, next_action=consent) if consent is not None else current

    async def _transition(
        self, provider_subscription_id: str, action: str, reason: str, idempotency_key: str, *, done: frozenset[str]
    ) -> ProviderSubscription:
        """Suspend, activate or cancel; a subscription already in a ``done`` status is what was asked."""
        try:
            await self._client.call(
                "POST",
                f"/v1/billing/subscriptions/{_id(provider_subscription_id)}/{action}",
                request_id=idempotency_key,
                body={"reason": reason},
            )
        except RetryableProviderError:
            raise
        except ProviderError:
            # PayPal replays no answer for these calls, so a retry of one that worked (its answer
            # lost) is refused as SUBSCRIPTION_STATUS_INVALID. The refusal alone does not say the
            # state was reached (a closed account, a cancelled subscription): the subscription does.
            body = await self._read_subscription(provider_subscription_id)
            if body.get("status") not in done:
                raise
            return subscriptions.from_paypal(body)
        return await self._get_subscription(provider_subscription_id)

    async def cancel_subscription(
        self,
        provider_subscription_id: str,
        *,
        at_period_end: bool,  # noqa: ARG002 - the same PayPal call either way (below)
        idempotency_key: str,
    ) -> ProviderSubscription:
        # PayPal has no scheduled cancellation. Its cancel stops all future billing at once and
        # refunds nothing, so the period already paid stays paid: at_period_end is the same call.
        return await self._transition(
            provider_subscription_id, "cancel", "Cancelled in billplane", idempotency_key, done=_FINISHED
        )

    async def pause_subscription(self, provider_subscription_id: str, *, idempotency_key: str) -> ProviderSubscription:
        return await self._transition(
            provider_subscription_id, "suspend", subscriptions.PAUSE_REASON, idempotency_key, done=_SUSPENDED
        )

    async def resume_subscription(self, provider_subscription_id: str, *, idempotency_key: str) -> ProviderSubscription:
        # ACTIVE only: a SUSPENDED subscription PayPal refuses to activate (its payment failure
        # threshold reached) stays an error the tenant must see.
        return await self._transition(
            provider_subscription_id, "activate", "Resumed in billplane", idempotency_key, done=_ACTIVE
        )

    async def charge(self, request: ChargeRequest, *, idempotency_key: str) -> ChargeResult:
        """Capture a subscription's outstanding balance. On PayPal the stored payment method is the
        approved subscription itself (its billing agreement): ``provider_subscription_id``, or a
        subscription id given as ``payment_method``. Anything else has no PayPal equivalent."""
        subscription = request.provider_subscription_id or request.payment_method
        if not subscription:
            raise UnsupportedOperationError(
                "a charge without a subscription", "PayPal charges only an approved subscription's outstanding balance"
            )
        body = {
            "note": (request.description or f"billplane payment {request.payment_id}")[:128],
            "capture_type": "OUTSTANDING_BALANCE",
            "amount": {"currency_code": request.currency.upper(), "value": to_value(request.amount, request.currency)},
        }
        transaction = await self._client.call(
            "POST", f"/v1/billing/subscriptions/{_id(subscription)}/capture", request_id=idempotency_key, body=body
        )
        return _charge_result(transaction, subscription, idempotency_key)

    async def charge_status(self, provider_payment_id: str) -> ChargeResult | None:
        """A capture as it stands now (``GET /v2/payments/captures/{id}``); None for a capture PayPal
        accepted without naming it (there is nothing to ask about) or one PayPal does not know."""
        if provider_payment_id.startswith(_UNNAMED_CAPTURE):
            return None
        try:
            capture = await self._client.call("GET", f"/v2/payments/captures/{_id(provider_payment_id)}")
        except ProviderError as error:
            if error.code in _MISSING:
                return None
            raise
        status = _CAPTURE_STATUSES.get(str(capture.get("status")), "pending")
        amount: dict[str, Any] = capture.get("amount") or {}
        currency = amount.get("currency_code")
        failed = status == "failed"
        return ChargeResult(
            provider_payment_id=provider_payment_id,
            status=status,
            failure_code=str(capture.get("status")) if failed else None,
            failure_message="PayPal declined the payment" if failed else None,
            amount=to_minor(str(amount["value"]), str(currency)) if amount.get("value") and currency else None,
            currency=currency,
        )

    async def refund(self, request: RefundRequest, *, idempotency_key: str) -> RefundResult:
        body: Json = {
            "amount": {"currency_code": request.currency.upper(), "value": to_value(request.amount, request.currency)},
            "invoice_id": refunds.invoice_id(self._tenant_id, request.refund_id),
        }
        if request.reason:
            body["note_to_payer"] = request.reason[:255]
        refund = await self._client.call(
            "POST",
            f"/v2/payments/captures/{_id(request.provider_payment_id)}/refund",
            request_id=idempotency_key,
            body=body,
        )
        # The rest comes from the request: money has moved, and a surprise in PayPal's answer
        # must not turn the refund into an error that billplane would retry.
        status, failure = refunds.outcome(refund, missing="PENDING")
        return RefundResult(
            provider_refund_id=str(refund["id"]),
            status=status,
            failure_message=failure,
            provider_payment_id=request.provider_payment_id,
            amount=request.amount,
            currency=request.currency.upper(),
        )

    async def refund_status(self, provider_refund_id: str) -> RefundResult | None:
        """A refund as it stands now (``GET /v2/payments/refunds/{id}``); None for one PayPal does
        not know. Every refund id billplane holds is PayPal's own: there is no local kind to skip."""
        try:
            refund = await self._client.call("GET", f"/v2/payments/refunds/{_id(provider_refund_id)}")
        except ProviderError as error:
            if error.code in _MISSING:
                return None
            raise
        return refunds.from_v2(refund, tenant_id=self._tenant_id, refund_id=provider_refund_id)

    async def report_usage(self, usage: UsageReport, *, idempotency_key: str) -> None:  # noqa: ARG002 - refused
        raise UnsupportedOperationError("usage reporting", "PayPal plans bill a fixed quantity and accept no usage")

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[ProviderEvent]:
        fields = webhooks.transmission(headers, datetime.now(UTC))
        webhooks.check_body(body)
        try:
            answer = await self._client.call(
                "POST",
                "/v1/notifications/verify-webhook-signature",
                # A new id every time: a request id replays its first answer, and a replayed SUCCESS
                # would let a forged body ride on a genuine delivery's headers.
                request_id=str(uuid.uuid4()),
                content=webhooks.verify_request(fields, self._webhook_id, body),
                seconds=VERIFY_TIMEOUT,
            )
        except RetryableProviderError:
            raise  # PayPal unreachable: billplane answers 503 and PayPal delivers again
        except ProviderError as exc:
            # PayPal would not even check it (malformed headers, unknown webhook id): unverified.
            raise WebhookVerificationError(f"PayPal refused to verify the webhook: {exc.message}") from None
        if answer.get("verification_status") != "SUCCESS":
            raise WebhookVerificationError("PayPal did not verify the webhook's signature")
        found = events.normalize(body, self._tenant_id)
        return [*found, *[state for event in found if (state := await self._after_sale(event)) is not None]]

    async def _after_sale(self, event: ProviderEvent) -> ProviderEvent | None:
        """The subscription's state after a completed sale of it. A sale that recovers a failed
        cycle resets PayPal's failed-payment count, and PayPal sends no subscription event for
        that: without this read the subscription would stay past_due for good."""
        payment = event.payment
        if payment is None or payment.status != "succeeded" or payment.provider_subscription_id is None:
            return None
        try:
            resource = await self._read_subscription(payment.provider_subscription_id)
        except RetryableProviderError:
            raise  # billplane answers 503 and PayPal delivers again
        except ProviderError:
            return None  # not readable with this account: the payment still counts
        return events.subscription_after(resource, event)


def _charge_result(transaction: Json, subscription: str, idempotency_key: str) -> ChargeResult:
    if not transaction.get("id"):
        # PayPal's spec declares no body for the 202: without a transaction, the capture is only
        # known to be accepted. Its outcome arrives as PAYMENT.SALE.COMPLETED for the subscription.
        digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:16]
        return ChargeResult(
            provider_payment_id=f"{_UNNAMED_CAPTURE}{subscription}-{digest}",
            status="pending",
            provider_subscription_id=subscription,
        )
    status = str(transaction.get("status"))
    gross: dict[str, Any] = (transaction.get("amount_with_breakdown") or {}).get("gross_amount") or {}
    currency = gross.get("currency_code")
    amount = to_minor(str(gross["value"]), str(currency)) if gross.get("value") and currency else None
    result = ChargeResult(
        provider_payment_id=str(transaction["id"]),
        status="pending",  # PENDING: PAYMENT.SALE.COMPLETED follows when it settles
        amount=amount,
        currency=currency,
        provider_subscription_id=subscription,
    )
    if status in {"COMPLETED", "PARTIALLY_REFUNDED", "REFUNDED"}:
        return msgspec.structs.replace(result, status="succeeded")
    if status == "DECLINED":
        return msgspec.structs.replace(
            result, status="failed", failure_code="DECLINED", failure_message="PayPal declined the payment"
        )
    return result
