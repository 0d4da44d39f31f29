"""/v1/customers/{customer_id}/payment-methods: register, list and detach a customer's payment methods."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.auth import runtime_of
from billplane.api.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, decode_cursor, page_of
from billplane.payments.method_schemas import PaymentMethod, PaymentMethodAttachBody
from billplane.payments.methods import PaymentMethods
from billplane.provider_accounts.vault import AccountVault
from billplane_tenants import KeyPrincipal


async def provide_payment_methods(
    request: Request[Any, Any, Any],
    tenant_session: NamedDependency[AsyncSession],
    principal: NamedDependency[KeyPrincipal],
) -> PaymentMethods:
    runtime = runtime_of(request)
    return PaymentMethods(
        tenant_session, principal.tenant_id, runtime.plugins, AccountVault.from_settings(runtime.settings)
    )


class PaymentMethodController(Controller):
    path = "/v1/customers/{customer_id:int}/payment-methods"
    tags = ["payment methods"]
    security = [{"apiKey": []}]
    dependencies = {"methods": Provide(provide_payment_methods)}

    @post("/", operation_id="attachPaymentMethod", status_code=201)
    async def attach_payment_method(
        self, customer_id: FromPath[int], data: PaymentMethodAttachBody, methods: NamedDependency[PaymentMethods]
    ) -> PaymentMethod:
        """Register a payment method the provider already holds: `token` is the provider's id for it,
        from its own client-side form (billplane never takes card data). The provider is asked to make it
        chargeable for this customer; 422 naming `token` when it refuses, 503 when it cannot answer now
        (nothing registered). By default it becomes the customer's default at that account."""
        return PaymentMethod.of(await methods.attach(customer_id, data))

    @get("/", operation_id="listPaymentMethods")
    async def list_payment_methods(
        self,
        customer_id: FromPath[int],
        *,
        methods: NamedDependency[PaymentMethods],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[PaymentMethod]:
        """The customer's attached payment methods, oldest first."""
        rows = await methods.page(customer_id, after=decode_cursor(cursor), limit=limit)
        page, next_cursor = page_of(rows, limit)
        return Page(data=[PaymentMethod.of(row) for row in page], next_cursor=next_cursor)

    @delete("/{method_id:int}", operation_id="detachPaymentMethod", status_code=204)
    async def detach_payment_method(
        self, customer_id: FromPath[int], method_id: FromPath[int], methods: NamedDependency[PaymentMethods]
    ) -> None:
        """Detach it at the provider, then stop charging it. A live subscription that named it is
        charged with the customer's default method at its account from then on, and so is a charge
        queued with it and not sent yet. 409 when the provider refuses to detach it, 503 when the
        provider cannot be asked: nothing is detached then."""
        await methods.detach(customer_id, method_id)
