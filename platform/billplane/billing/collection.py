"""Collecting a billing run's invoices: finalize them (their numbers), then charge them automatically.

As ``POST /v1/invoices/{id}/finalize`` and ``.../pay`` do (``InvoiceLifecycle``, ``charge_invoice``),
for a whole batch of one tenant's new invoices at once: the numbers are taken with one update of
the counter row, and each charge is queued as a pending payment and its outbox row, in the run's
transaction. An invoice that cannot be charged now (no provider account, no payment method) stays
open for the tenant to pay or for dunning to retry; that is not an error of the run.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import cast

from sqlalchemy import RowMapping, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import class_mapper

from billplane.billing.cycle import Event, emit_all
from billplane.invoices import states
from billplane.invoices.models import Invoice, InvoiceLine
from billplane.invoices.schemas import Invoice as InvoiceView
from billplane.invoices.schemas import InvoiceFinalize
from billplane.payments.models import PaymentMethod
from billplane.payments.operations import PAYMENT_METHOD_KEY
from billplane.provider_accounts.models import ProviderAccount
from billplane.provider_accounts.repository import ProviderAccountRepository
from billplane.provider_accounts.resolved import AccountSource
from billplane.subscriptions.models import Subscription
from billplane.sync.accounts import DefaultAccountCache
from billplane.sync.queue import JobQueue
from billplane.sync.writer import OutboxWriter

logger = logging.getLogger("billplane.billing")
_DAYS_UNTIL_DUE = InvoiceFinalize().days_until_due
_OPEN = states.target("finalize", "draft")
_PAID = states.target("pay", _OPEN)  # what finalizing an invoice of 0 leads to at once
# Column name -> mapped attribute name (``metadata`` is ``metadata_``).
_ATTRIBUTES = {
    model: {column.name: prop.key for prop in class_mapper(model).column_attrs for column in prop.columns}
    for model in (Invoice, InvoiceLine)
}
_LINES = text("SELECT * FROM invoice_lines WHERE invoice_id = ANY(CAST(:ids AS bigint[])) ORDER BY id")
# Takes the next ``count`` numbers from the tenant's counter row, as ``InvoiceRepository.take_number``
# takes one (the row stays locked until the transaction ends, and a rollback gives them back), and
# gives them to the drafts in id order: every draft here is the run's own, so none is skipped.
_FINALIZE = text(
    "WITH counter AS (INSERT INTO invoice_counters (id, last_number) VALUES (1, CAST(:count AS bigint)) "
    "ON CONFLICT (id) DO UPDATE SET last_number = invoice_counters.last_number + excluded.last_number "
    "RETURNING last_number) "
    "UPDATE invoices AS i SET number = 'INV-' || (counter.last_number - CAST(:count AS bigint) + u.n), "
    "finalized_at = CAST(:now AS timestamptz), due_at = CAST(:due_at AS timestamptz), updated_at = now(), "
    "status = CASE WHEN i.total = i.amount_paid THEN CAST(:paid AS text) ELSE CAST(:open AS text) END, "
    "paid_at = CASE WHEN i.total = i.amount_paid THEN CAST(:now AS timestamptz) END "
    "FROM unnest(CAST(:ids AS bigint[])) WITH ORDINALITY AS u(id, n), counter "
    "WHERE i.id = u.id AND i.status = 'draft' RETURNING i.*"
)
# The pending payments and their ``payment.charge`` outbox rows, in one statement.
_INSERT_CHARGES = text(
    "WITH p AS (INSERT INTO payments (customer_id, invoice_id, amount, currency, status, provider, "
    "provider_account_id, refunded_amount, metadata) "
    "SELECT c, i, a, cur, 'pending', p, pa, 0, m::jsonb FROM unnest(CAST(:customers AS bigint[]), "
    "CAST(:invoices AS bigint[]), CAST(:amounts AS bigint[]), CAST(:currencies AS text[]), "
    "CAST(:providers AS text[]), CAST(:accounts AS bigint[]), CAST(:metadata AS text[])) "
    "WITH ORDINALITY AS u(c, i, a, cur, p, pa, m, n) ORDER BY n RETURNING id, provider_account_id) "
    "INSERT INTO outbox (kind, object_id, provider_account_id) "
    "SELECT 'payment.charge', id, provider_account_id FROM p ORDER BY id RETURNING id"
)


class _RefusedError(Exception):
    """An invoice that cannot be charged now; it stays open."""


async def collect(
    session: AsyncSession,
    invoice_ids: list[int],
    *,
    tenant: tuple[int, str],
    queue: JobQueue,
    accounts: AccountSource | None,
    defaults: DefaultAccountCache,
) -> None:
    if not invoice_ids:
        return
    invoices = await _finalize(session, invoice_ids)
    due = [invoice for invoice in invoices if invoice.status == "open"]  # not paid at finalization
    if due:
        tenant_id, schema = tenant
        await _Charges(session, OutboxWriter(session, tenant_id, schema, queue, accounts, defaults)).queue(due)


@dataclass(frozen=True, slots=True)
class _Finalized:
    """What charging needs of a finalized invoice."""

    id: int
    customer_id: int
    subscription_id: int | None
    status: str
    currency: str
    amount_due: int


async def _finalize(session: AsyncSession, invoice_ids: list[int]) -> list[_Finalized]:
    """draft -> open with the next gapless numbers, in id order; an invoice of 0 is paid at once.

    The run drafted these invoices in this transaction, so no one else can see them yet: no lock,
    and one UPDATE for all of them.
    """
    lines: dict[int, list[SimpleNamespace]] = {}
    for row in await session.execute(_LINES, {"ids": invoice_ids}):
        lines.setdefault(row.invoice_id, []).append(_row(InvoiceLine, row._mapping))  # noqa: SLF001
    ids = sorted(invoice_ids)
    now = datetime.now(UTC)
    values = {
        "ids": ids,
        "count": len(ids),
        "open": _OPEN,
        "paid": _PAID,
        "now": now,
        "due_at": now + timedelta(days=_DAYS_UNTIL_DUE),
    }
    invoices: list[_Finalized] = []
    events: list[Event] = []
    for row in sorted(await session.execute(_FINALIZE, values), key=lambda row: row.id):
        invoice = _row(Invoice, row._mapping)  # noqa: SLF001
        invoice.amount_due = invoice.total - invoice.amount_paid
        invoice.lines = lines.get(invoice.id, [])
        view = InvoiceView.of(cast("Invoice", invoice))
        if invoice.status == _PAID:
            finalized = InvoiceView.of(cast("Invoice", invoice))
            finalized.status, finalized.paid_at = _OPEN, None
            events.append(Event("invoice.finalized", "invoice", invoice.id, finalized))
            events.append(Event("invoice.paid", "invoice", invoice.id, view))
        else:
            events.append(Event("invoice.finalized", "invoice", invoice.id, view))
        invoices.append(
            _Finalized(
                invoice.id,
                invoice.customer_id,
                invoice.subscription_id,
                invoice.status,
                invoice.currency,
                invoice.amount_due,
            )
        )
    await emit_all(session, events)
    return invoices


def _row(model: type[Invoice | InvoiceLine], values: RowMapping) -> SimpleNamespace:
    """A row under the model's attribute names, for the API view: building ORM objects outside the
    session cost more than the rest of finalizing."""
    attributes = _ATTRIBUTES[model]
    return SimpleNamespace(**{attributes[name]: value for name, value in values.items()})


@dataclass(frozen=True, slots=True)
class _Terms:
    """How a subscription's invoices are charged."""

    provider_account_id: int | None
    payment_method_id: int | None


@dataclass(slots=True)
class _Charges:
    """``charge_invoice`` for many invoices: account and payment method of each, looked up together."""

    session: AsyncSession
    writer: OutboxWriter

    async def queue(self, invoices: Sequence[_Finalized]) -> None:
        query = select(Subscription.id, Subscription.provider_account_id, Subscription.payment_method_id).where(
            Subscription.id.in_({invoice.subscription_id for invoice in invoices if invoice.subscription_id})
        )
        by_id = {
            row.id: _Terms(row.provider_account_id, row.payment_method_id) for row in await self.session.execute(query)
        }
        subscriptions = {
            invoice.id: by_id.get(invoice.subscription_id)
            for invoice in invoices
            if invoice.subscription_id is not None
        }
        account_ids = {invoice.id: await self._account_id(subscriptions.get(invoice.id)) for invoice in invoices}
        live = await self._accounts({account for account in account_ids.values() if account is not None})
        chosen = await self._methods(invoices, subscriptions, account_ids)
        payments: list[tuple[_Finalized, ProviderAccount, PaymentMethod]] = []
        for invoice in invoices:
            try:
                account = self._account(account_ids[invoice.id], live)
                method = self._method(invoice, subscriptions.get(invoice.id), account.id, chosen)
            except _RefusedError as refused:
                logger.info("invoice %s of %s stays open: %s", invoice.id, self.writer.schema, refused)
                continue
            payments.append((invoice, account, method))
        if not payments:
            return
        rows = {
            "customers": [invoice.customer_id for invoice, _, _ in payments],
            "invoices": [invoice.id for invoice, _, _ in payments],
            "amounts": [invoice.amount_due for invoice, _, _ in payments],
            "currencies": [invoice.currency for invoice, _, _ in payments],
            "providers": [account.provider for _, account, _ in payments],
            "accounts": [account.id for _, account, _ in payments],
            "metadata": [json.dumps({PAYMENT_METHOD_KEY: str(method.id)}) for _, _, method in payments],
        }
        outbox_ids = list((await self.session.execute(_INSERT_CHARGES, rows)).scalars())
        self.writer.ring(outbox_ids)

    async def _account_id(self, subscription: _Terms | None) -> int | None:
        if subscription is not None and subscription.provider_account_id is not None:
            return subscription.provider_account_id
        defaults = await self.writer.default_account_ids()
        return defaults[0] if defaults else None

    async def _accounts(self, ids: set[int]) -> dict[int, ProviderAccount]:
        repository = ProviderAccountRepository(self.session, self.writer.tenant_id)
        found = {account_id: await repository.get_live(account_id) for account_id in sorted(ids)}
        return {account_id: account for account_id, account in found.items() if account is not None}

    @staticmethod
    def _account(account_id: int | None, live: dict[int, ProviderAccount]) -> ProviderAccount:
        if account_id is None:
            raise _RefusedError("the tenant has no provider account to charge through: connect one first")
        account = live.get(account_id)
        if account is None:
            raise _RefusedError(f"provider account {account_id} no longer exists: connect an account to charge through")
        return account

    async def _methods(
        self,
        invoices: Sequence[_Finalized],
        subscriptions: dict[int, _Terms | None],
        account_ids: dict[int, int | None],
    ) -> dict[tuple[str, int, int], PaymentMethod]:
        """Attached methods by ("id", method id, customer) and ("default", customer, account)."""
        named = {s.payment_method_id for s in subscriptions.values() if s is not None and s.payment_method_id}
        customers = {invoice.customer_id for invoice in invoices}
        accounts = {account for account in account_ids.values() if account is not None}
        attached = PaymentMethod.detached_at.is_(None)
        found: dict[tuple[str, int, int], PaymentMethod] = {}
        if named:
            query = select(PaymentMethod).where(PaymentMethod.id.in_(named), attached)
            for method in (await self.session.execute(query)).scalars():
                found["id", method.id, method.customer_id] = method
        if accounts:
            query = (
                select(PaymentMethod)
                .where(
                    PaymentMethod.customer_id.in_(customers),
                    PaymentMethod.provider_account_id.in_(accounts),
                    PaymentMethod.is_default.is_(True),
                    attached,
                )
                .order_by(PaymentMethod.id)
            )
            for method in (await self.session.execute(query)).scalars():
                found["default", method.customer_id, method.provider_account_id] = method  # the newest wins
        return found

    @staticmethod
    def _method(
        invoice: _Finalized,
        subscription: _Terms | None,
        account_id: int,
        found: dict[tuple[str, int, int], PaymentMethod],
    ) -> PaymentMethod:
        chosen = subscription.payment_method_id if subscription is not None else None
        if chosen is None:
            method = found.get(("default", invoice.customer_id, account_id))
            if method is None:
                raise _RefusedError(
                    f"the customer has no default payment method at provider account {account_id}: name one"
                )
            return method
        method = found.get(("id", chosen, invoice.customer_id))
        if method is None:
            raise _RefusedError(
                f"payment method {chosen} (the subscription's) is not an attached payment method of the customer"
            )
        if method.provider_account_id != account_id:
            raise _RefusedError(
                f"payment method {chosen} (the subscription's) is at provider account {method.provider_account_id}; "
                f"this invoice is charged through account {account_id}"
            )
        return method
