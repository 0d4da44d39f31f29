"""/v1/payments (written by invoice payments and providers) and /v1/refunds."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.auth import principal_of, runtime_of
from billplane.api.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, decode_cursor
from billplane.db.mixins import MAX_ID
from billplane.payments.lookup import PaymentLookup
from billplane.payments.models import PAYMENT_STATUSES, REFUND_STATUSES
from billplane.payments.refund_reads import RefundFilters, RefundReads
from billplane.payments.refund_resolving import RefundResolution
from billplane.payments.refund_syncing import RefundSync
from billplane.payments.refunds import RefundService
from billplane.payments.repository import PaymentFilters, PaymentRepository
from billplane.payments.resolving import PaymentResolution
from billplane.payments.schemas import Payment, PaymentResolveBody, Refund, RefundCreateBody, RefundResolveBody
from billplane.payments.service import PaymentService
from billplane.payments.syncing import PaymentSync
from billplane.settings import PendingChecks
from billplane.sync.dependencies import sync_service_for
from billplane_tenants import KeyPrincipal


async def provide_payment_service(tenant_session: NamedDependency[AsyncSession]) -> PaymentService:
    return PaymentService(PaymentRepository(session=tenant_session))


def _asking(request: Request[Any, Any, Any]) -> tuple[PaymentLookup, timedelta, PendingChecks]:
    """Who can be asked about a charge, how long after it gave up, and when a pending one is shown
    to the tenant: what both routes that settle a waiting payment need."""
    runtime = runtime_of(request)
    providers = runtime.settings.providers
    lookup = PaymentLookup(runtime.accounts, runtime.plugins)
    return lookup, providers.payment_reconcile_after, providers.payment_pending_checks


async def provide_payment_sync(
    request: Request[Any, Any, Any],
    tenant_session: NamedDependency[AsyncSession],
    principal: NamedDependency[KeyPrincipal],
) -> PaymentSync:
    return PaymentSync(tenant_session, principal.tenant_id, *_asking(request))


async def provide_payment_resolution(
    request: Request[Any, Any, Any],
    tenant_session: NamedDependency[AsyncSession],
    principal: NamedDependency[KeyPrincipal],
) -> PaymentResolution:
    return PaymentResolution(tenant_session, principal.tenant_id, *_asking(request))


class PaymentController(Controller):
    path = "/v1/payments"
    tags = ["payments"]
    security = [{"apiKey": []}]
    dependencies = {
        "payments": Provide(provide_payment_service),
        "syncing": Provide(provide_payment_sync),
        "resolution": Provide(provide_payment_resolution),
    }

    @get("/{payment_id:int}", operation_id="getPayment")
    async def get_payment(self, payment_id: FromPath[int], payments: NamedDependency[PaymentService]) -> Payment:
        """One payment with its refunds; 404 if it does not exist or belongs to another tenant."""
        return Payment.of(await payments.get(payment_id))

    @post("/{payment_id:int}/sync", operation_id="syncPayment", status_code=200)
    async def sync_payment(self, payment_id: FromPath[int], syncing: NamedDependency[PaymentSync]) -> Payment:
        """Reconcile a payment whose charge was never confirmed, now, and answer the payment.

        For a `pending` payment whose charge gave up (the provider was unreachable) at least
        `BILLPLANE_PAYMENT_RECONCILE_AFTER_MINUTES` ago: billplane asks the provider whether the
        charge exists and records it (`succeeded`, `failed` or still `pending` with its
        `provider_payment_id`), or settles the payment `failed` with `failure_code`
        `provider_unreachable` when the provider never received it. 409 when the payment is not
        stuck (settled, still being charged, or too recent), 422 when its provider cannot be asked
        about a charge, 503 when the provider cannot be reached now, 502 when its plugin fails with an
        error of its own (nothing changes). The periodic job does the same.

        For a payment the provider holds as `pending` (it has a `provider_payment_id`: a bank debit
        still clearing), billplane asks the provider at once how the charge stands and records a
        settled outcome as its webhook would have (422 when the provider cannot be asked: no
        `payment_status` capability).
        """
        return Payment.of(await syncing.sync(payment_id))

    @post("/{payment_id:int}/resolve", operation_id="resolvePayment", status_code=200)
    async def resolve_payment(
        self, payment_id: FromPath[int], data: PaymentResolveBody, resolution: NamedDependency[PaymentResolution]
    ) -> Payment:
        """Settle, from what you found at the provider, a payment billplane could not confirm.

        For a `pending` payment whose charge gave up at least
        `BILLPLANE_PAYMENT_RECONCILE_AFTER_MINUTES` ago, at a provider that cannot be asked about a
        charge (its `action_required` says so). `outcome` `failed`: the provider has no such
        charge; the payment fails with `failure_code` `resolved_by_tenant` and dunning charges the
        invoice again later. `outcome` `succeeded` with `provider_payment_id`: the provider took the
        money; the invoice is paid. When another payment already records that provider payment id
        (the provider's webhook came first) and is on no invoice, for the same customer, amount and
        currency, that payment pays the invoice and this one is `canceled` with `failure_code`
        `duplicate`. 409 when the payment is not waiting for this (settled, still being charged,
        too recent, or its provider can be asked: `POST /v1/payments/{id}/sync`), or when the
        payment recording that id is on another invoice or differs.

        Also for a payment the provider holds as `pending` (with a `provider_payment_id`) that
        nothing settled within `BILLPLANE_PAYMENT_PENDING_FLAG_HOURS` (its `action_required` says
        so), or whose provider account was deleted: `succeeded` or `failed` as found there;
        `provider_payment_id`, if given, must be the payment's own (422). 409 before then.
        """
        return Payment.of(await resolution.resolve(payment_id, data))

    @get("/", operation_id="listPayments")
    async def list_payments(
        self,
        *,
        payments: NamedDependency[PaymentService],
        customer_id: Annotated[int | None, QueryParameter(ge=1, le=MAX_ID, description="This customer's only.")] = None,
        invoice_id: Annotated[
            int | None, QueryParameter(ge=1, le=MAX_ID, description="Paying this invoice only.")
        ] = None,
        status: Annotated[str | None, QueryParameter(enum=PAYMENT_STATUSES, description="In this state only.")] = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[Payment]:
        """List payments with their refunds, oldest first, filtered by customer, invoice or status."""
        filters = PaymentFilters(customer_id, invoice_id, status)
        rows, next_cursor = await payments.page(filters, after=decode_cursor(cursor), limit=limit)
        return Page(data=[Payment.of(row) for row in rows], next_cursor=next_cursor)


async def provide_refund_service(
    request: Request[Any, Any, Any], tenant_session: NamedDependency[AsyncSession]
) -> RefundService:
    return RefundService(
        tenant_session, lambda: sync_service_for(request, tenant_session, principal_of(request)).writer
    )


async def provide_refund_resolution(
    request: Request[Any, Any, Any],
    tenant_session: NamedDependency[AsyncSession],
    principal: NamedDependency[KeyPrincipal],
) -> RefundResolution:
    return RefundResolution(tenant_session, principal.tenant_id, _asking(request)[0])


async def provide_refund_reads(tenant_session: NamedDependency[AsyncSession]) -> RefundReads:
    return RefundReads(tenant_session)


async def provide_refund_sync(
    request: Request[Any, Any, Any],
    tenant_session: NamedDependency[AsyncSession],
    principal: NamedDependency[KeyPrincipal],
) -> RefundSync:
    return RefundSync(tenant_session, principal.tenant_id, *_asking(request))


class RefundController(Controller):
    path = "/v1/refunds"
    tags = ["payments"]
    security = [{"apiKey": []}]
    dependencies = {
        "refunds": Provide(provide_refund_service),
        "reads": Provide(provide_refund_reads),
        "resolution": Provide(provide_refund_resolution),
        "syncing": Provide(provide_refund_sync),
    }

    @get("/{refund_id:int}", operation_id="getRefund")
    async def get_refund(self, refund_id: FromPath[int], reads: NamedDependency[RefundReads]) -> Refund:
        """One refund by id; 404 if it does not exist or belongs to another tenant."""
        return Refund.of(await reads.get(refund_id))

    @get("/", operation_id="listRefunds")
    async def list_refunds(
        self,
        *,
        reads: NamedDependency[RefundReads],
        payment_id: Annotated[int | None, QueryParameter(ge=1, le=MAX_ID, description="This payment's only.")] = None,
        status: Annotated[str | None, QueryParameter(enum=REFUND_STATUSES, description="In this state only.")] = None,
        action_required: Annotated[
            bool | None,
            QueryParameter(
                description="`true`: only refunds waiting for you (`action_required` set); `false`: the others."
            ),
        ] = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[Refund]:
        """List refunds, oldest first, filtered by payment, status, or whether they wait for you."""
        filters = RefundFilters(payment_id, status, action_required)
        rows, next_cursor = await reads.page(filters, after=decode_cursor(cursor), limit=limit)
        return Page(data=[Refund.of(row) for row in rows], next_cursor=next_cursor)

    @post("/", operation_id="createRefund", status_code=201)
    async def create_refund(self, data: RefundCreateBody, refunds: NamedDependency[RefundService]) -> Refund:
        """Refund a succeeded payment, all that is left of it or `amount`; the provider is asked asynchronously.

        The refund starts `pending` (its amount already counted in the payment's `refunded_amount`)
        and becomes `succeeded`, or `failed` (the amount is given back). 422 for an amount above
        `amount - refunded_amount` of the payment, 409 for a payment that has not succeeded.
        """
        return Refund.of(await refunds.create(data))

    @post("/{refund_id:int}/sync", operation_id="syncRefund", status_code=200)
    async def sync_refund(self, refund_id: FromPath[int], syncing: NamedDependency[RefundSync]) -> Refund:
        """Ask the provider now how a refund it holds as `pending` stands, or whether it made a
        refund billplane could not confirm, and record its answer.

        What the reconciliation job does at most every `BILLPLANE_PAYMENT_PENDING_CHECK_MINUTES`,
        at once: a `succeeded` or `failed` answer settles the refund as its webhook would (a failed
        one gives its amount back); anything else leaves it pending, or, once it is
        `BILLPLANE_PAYMENT_PENDING_FLAG_HOURS` old, shows it to you (`action_required`). A refund
        never confirmed is looked up once its request gave up
        `BILLPLANE_PAYMENT_RECONCILE_AFTER_MINUTES` ago: found, it is recorded as the refund call's
        answer; not found, it fails and its amount goes back to the payment. 409 when there is
        nothing to ask (settled, still being sent, or gave up too recently), or the provider refuses
        to answer; 422 when the provider cannot be asked (no `refund_status`, or no
        `refund_lookup`, capability); 503 when it cannot be reached now; 502 when its plugin fails
        with an error of its own (nothing changes).
        """
        return Refund.of(await syncing.sync(refund_id))

    @post("/{refund_id:int}/resolve", operation_id="resolveRefund", status_code=200)
    async def resolve_refund(
        self, refund_id: FromPath[int], data: RefundResolveBody, resolution: NamedDependency[RefundResolution]
    ) -> Refund:
        """Settle, from what you found at the provider, a refund billplane shows as waiting for you.

        Only for a `pending` refund whose `action_required` is set: billplane could not confirm it
        (every request ended without an answer, or was refused after one), its provider account
        was deleted, or the provider held it as pending and nothing settled it within
        `BILLPLANE_PAYMENT_PENDING_FLAG_HOURS`. `outcome` `succeeded`: the provider refunded; a
        refund billplane has no provider id for needs `provider_refund_id`. `outcome` `failed`:
        it did not; the refund's amount is given back to the payment, to be refunded again if
        you wish. A `provider_refund_id` given for a refund that has one must be that one (422).
        A `provider_refund_id` named for a refund billplane has no id for is read from a provider
        that can be asked (`refund_status`): 422 if the provider has no such refund or it is
        another (another payment, amount or billplane refund), 409 if it has not succeeded there,
        503 if the provider cannot be reached. 409 when the refund is settled or not shown to you
        yet (billplane still waits for the provider's answer), or when another refund already
        records the `provider_refund_id` named (its webhook came first): then resolve this one
        `failed`; and when the provider refuses to answer during that check. A `failed` is your
        word: if the provider's webhook later reports the refund succeeded, it becomes `succeeded`
        again with its amount reserved again, or, when the payment has no room left for it, stays
        `failed` and `action_required` says by how much the customer got more back.
        """
        return Refund.of(await resolution.resolve(refund_id, data))
