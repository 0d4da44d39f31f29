"""The adapter: billplane's contract translated to Example Pay's small HTTP API.

Every call that changes something sends billplane's idempotency key as ``Idempotency-Key``, so a
retried call returns the first result. HTTP errors become billplane's error types.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Any

import httpx
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

from billplane_example import webhooks

DEFAULT_API_BASE = "https://api.example-pay.invalid"  # BILLPLANE_PROVIDER_EXAMPLE_API_BASE overrides it


@cache
def _tls() -> ssl.SSLContext:
    # Built once per process: loading the CA bundle costs more than a whole call to a local fake.
    return ssl.create_default_context()


class ExampleCredentials(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    api_token: str


class _Event(msgspec.Struct, frozen=True):
    id: str
    type: str
    created: int
    data: dict[str, Any]


class ExamplePayAdapter:
    def __init__(self, context: AdapterContext, credentials: ExampleCredentials) -> None:
        self._base = context.options.get("api_base", DEFAULT_API_BASE)
        self._token = credentials.api_token
        self._webhook_secret = context.webhook_secret

    async def _call(self, method: str, path: str, *, key: str | None = None, body: object = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self._token}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        try:
            async with httpx.AsyncClient(base_url=self._base, timeout=10.0, verify=_tls()) as client:
                response = await client.request(method, path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise RetryableProviderError(f"Example Pay is unreachable: {type(exc).__name__}") from exc
        if response.status_code == httpx.codes.UNAUTHORIZED:
            raise InvalidCredentialsError("Example Pay refused the API token")
        if response.status_code == httpx.codes.TOO_MANY_REQUESTS or response.is_server_error:
            retry_after = response.headers.get("retry-after")
            raise RetryableProviderError(
                f"Example Pay answered {response.status_code}",
                retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
            )
        if response.is_error:
            error = response.json().get("error", {})
            raise ProviderError(error.get("message", f"HTTP {response.status_code}"), code=error.get("code"))
        result: dict[str, Any] = response.json()
        return result

    async def check_credentials(self) -> None:
        await self._call("GET", "/v1/account")

    async def ensure_customer(self, customer: CustomerData, *, idempotency_key: str) -> ProviderRef:
        body = {"email": customer.email, "name": customer.name, "metadata": customer.metadata}
        created = await self._call("POST", "/v1/customers", key=idempotency_key, body=body)
        return ProviderRef(provider_id=created["id"])

    async def update_customer(self, provider_customer_id: str, customer: CustomerData, *, idempotency_key: str) -> None:
        body = {"email": customer.email, "name": customer.name, "metadata": customer.metadata}
        await self._call("POST", f"/v1/customers/{provider_customer_id}", key=idempotency_key, body=body)

    async def delete_customer(self, provider_customer_id: str, *, idempotency_key: str) -> None:
        try:
            await self._call("DELETE", f"/v1/customers/{provider_customer_id}", key=idempotency_key)
        except ProviderError as exc:
            if exc.code != "not_found":  # already gone is what we wanted
                raise

    async def ensure_product(self, product: ProductData, *, idempotency_key: str) -> ProviderRef:
        body = {"name": product.name, "description": product.description}
        created = await self._call("POST", "/v1/products", key=idempotency_key, body=body)
        return ProviderRef(provider_id=created["id"])

    async def ensure_price(self, price: PriceData, *, idempotency_key: str) -> ProviderRef:
        if price.pricing_model not in {"flat", "per_seat"}:
            raise UnsupportedOperationError(
                f"{price.pricing_model} prices", "Example Pay only has a fixed amount per period, per unit or not"
            )
        body = {
            "product": price.provider_product_id,
            "amount": price.amount,
            "currency": price.currency,
            "interval": f"{price.interval_count} {price.billing_interval}",
            "per_unit": price.pricing_model == "per_seat",
        }
        created = await self._call("POST", "/v1/prices", key=idempotency_key, body=body)
        return ProviderRef(provider_id=created["id"])

    async def create_subscription(
        self, subscription: SubscriptionData, *, idempotency_key: str
    ) -> ProviderSubscription:
        raise UnsupportedOperationError("subscriptions", "Example Pay has none: billplane charges each invoice")

    async def update_subscription(
        self, provider_subscription_id: str, change: SubscriptionChange, *, idempotency_key: str
    ) -> ProviderSubscription:
        raise UnsupportedOperationError("subscriptions", "Example Pay has none")

    async def cancel_subscription(
        self, provider_subscription_id: str, *, at_period_end: bool, idempotency_key: str
    ) -> ProviderSubscription:
        raise UnsupportedOperationError("subscriptions", "Example Pay has none")

    async def pause_subscription(self, provider_subscription_id: str, *, idempotency_key: str) -> ProviderSubscription:
        raise UnsupportedOperationError("subscriptions", "Example Pay has none")

    async def resume_subscription(self, provider_subscription_id: str, *, idempotency_key: str) -> ProviderSubscription:
        raise UnsupportedOperationError("subscriptions", "Example Pay has none")

    async def report_usage(self, usage: UsageReport, *, idempotency_key: str) -> None:
        raise UnsupportedOperationError("usage reporting", "Example Pay has no subscriptions to meter")

    async def charge(self, request: ChargeRequest, *, idempotency_key: str) -> ChargeResult:
        body = {
            "amount": request.amount,
            "currency": request.currency,
            "source": request.payment_method,
            "customer": request.provider_customer_id,
            "description": request.description,
        }
        charge = await self._call("POST", "/v1/charges", key=idempotency_key, body=body)
        return ChargeResult(
            provider_payment_id=charge["id"],
            status=charge["status"],
            failure_code=charge.get("failure_code"),
            failure_message=charge.get("failure_message"),
        )

    async def refund(self, request: RefundRequest, *, idempotency_key: str) -> RefundResult:
        body = {"charge": request.provider_payment_id, "amount": request.amount, "reason": request.reason}
        refund = await self._call("POST", "/v1/refunds", key=idempotency_key, body=body)
        return RefundResult(provider_refund_id=refund["id"], status=refund["status"])

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[ProviderEvent]:
        webhooks.verify(self._webhook_secret, headers, body)  # before anything in the body is trusted
        try:
            event = msgspec.json.decode(body, type=_Event)
        except msgspec.DecodeError as exc:
            raise WebhookVerificationError(f"malformed webhook body: {exc}") from None
        if event.type not in {"charge.succeeded", "charge.failed"}:
            return []  # Example Pay sends more kinds than billplane needs
        charge_id = str(event.data.get("id", ""))
        payment = ChargeResult(
            provider_payment_id=charge_id,
            status="succeeded" if event.type == "charge.succeeded" else "failed",
            failure_code=event.data.get("failure_code"),
        )
        return [
            ProviderEvent(
                event_id=event.id,
                type="payment.succeeded" if event.type == "charge.succeeded" else "payment.failed",
                occurred_at=datetime.fromtimestamp(event.created, UTC),
                provider_object_id=charge_id,
                payment=payment,
            )
        ]
