"""All SQL for the outbox and for the sync state it drives on the objects billplane mirrors."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from typing import cast as typed

from sqlalchemy import (
    CTE,
    BigInteger,
    ColumnElement,
    Label,
    Table,
    Text,
    and_,
    bindparam,
    cast,
    exists,
    func,
    insert,
    literal,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, distinct_on
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.dml import ReturningInsert

from billplane.catalog.models import Plan, Product
from billplane.customers.models import Customer
from billplane.observability.redaction import redact
from billplane.provider_accounts.models import ProviderAccount
from billplane.subscriptions.models import Subscription
from billplane.sync.channel import OUTBOX_CHANNEL, notify_payload
from billplane.sync.models import OUTBOX_KINDS, OutboxEntry
from billplane_tenants import Tenant

# The objects whose sync state (``sync_status``, ...) is derived from their outbox rows.
OBJECT_MODELS: dict[str, type[Customer | Subscription | Product | Plan]] = {
    "customer": Customer,
    "subscription": Subscription,
    "product": Product,
    "plan": Plan,
}
_ERROR_LIMIT = 2000
# Rows at a deleted account stop counting: its control row is kept, marked deleted (tenant tables
# name its id), and nothing there can be done any more. An object's status is then its other
# accounts', and no sync sends them again. Told by a row marked deleted, not by the lack of a live
# one: an account no control row knows is the account source's to refuse (``OutboxWriter.live``).
# The tenant's own account (whose schema is the session's): another tenant's says nothing here.
_AT_DELETED_ACCOUNT = exists().where(
    ProviderAccount.id == OutboxEntry.provider_account_id,
    ProviderAccount.status == "deleted",
    ProviderAccount.tenant_id == select(Tenant.id).where(Tenant.schema_name == func.current_schema()).scalar_subquery(),
)


def _stored(error: str) -> str:
    """An attempt's error as ``last_error`` keeps it (``last_sync_error`` shows it to the tenant's keys):
    shortened, and scrubbed of every secret this process knows, under the performer's own scrubbing."""
    return redact(error)[:_ERROR_LIMIT]


def _held(row: OutboxEntry) -> tuple[ColumnElement[bool], ...]:
    """The row is still this attempt's: pending, with the lease its claim set (``next_attempt_at``).

    An attempt that outlived its lease must not undo the outcome of the attempt that claimed the
    row after it: fail the row it is working on, or move its lease (shorter, and a third attempt
    calls at once beside it). A manual sync (``wake``) also ends the lease: the row is due now.
    """
    return OutboxEntry.id == row.id, OutboxEntry.status == "pending", OutboxEntry.next_attempt_at == row.next_attempt_at


def _same_object(kind: str) -> str:
    return kind.partition(".")[0] + ".%"


@dataclass(frozen=True, slots=True)
class QueuedInsert:
    """An INSERT into a mirrored table that also queues its outbox rows and notifies the workers.

    ``created`` is the INSERT as a CTE (its RETURNING columns); the caller's final SELECT reads
    from it and must also select ``notified``: PostgreSQL runs a data-modifying CTE whatever
    happens, but a plain SELECT CTE (the NOTIFY) only when something references it.
    """

    created: CTE
    notified: Label[int]


def with_outbox_rows(created: ReturningInsert[Any], kind: str) -> QueuedInsert:
    """Wrap ``INSERT ... RETURNING id, ...`` of a mirrored table into one statement that also
    writes one ``kind`` outbox row per account and sends the outbox notification if it wrote any.

    The accounts are a bound array, so the SQL text is the same for 0, 1 or many accounts.
    Execute it with ``queued_insert_params``. The new row's ``sync_status`` is set here too.
    """
    if kind not in OUTBOX_KINDS:
        raise ValueError(f"unknown outbox kind {kind!r}")
    accounts_type = ARRAY(BigInteger)
    new = created.values(sync_status=bindparam("outbox_sync_status", type_=Text)).cte("new")
    accounts = (
        func.unnest(cast(bindparam("outbox_accounts", type_=accounts_type), accounts_type))
        .table_valued("id")
        .render_derived(name="a")
    )
    outbox = typed("Table", OutboxEntry.__table__)
    queued = (
        insert(outbox)
        .from_select(
            ["kind", "object_id", "provider_account_id"],
            select(literal(kind, Text), new.c.id, accounts.c.id).select_from(new).join(accounts, true()),
        )
        .returning(outbox.c.id)
        .cte("queued")
    )
    notified = (
        select(func.pg_notify(OUTBOX_CHANNEL, bindparam("outbox_notify", type_=Text)).label("sent"))
        .select_from(queued)
        .limit(1)
        .cte("notified")
    )
    return QueuedInsert(new, select(func.count()).select_from(notified).scalar_subquery().label("notified"))


def queued_insert_params(tenant_id: int, schema: str, account_ids: Iterable[int]) -> dict[str, Any]:
    """The parameters ``with_outbox_rows`` binds, beside the INSERT's own."""
    accounts = [int(account) for account in account_ids]
    return {
        "outbox_accounts": accounts,
        "outbox_sync_status": "pending" if accounts else "none",
        "outbox_notify": notify_payload(tenant_id, schema),
    }


class OutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, kind: str, object_id: int, account_ids: Iterable[int]) -> list[OutboxEntry]:
        rows = [OutboxEntry(kind=kind, object_id=object_id, provider_account_id=account) for account in account_ids]
        if rows:
            self.session.add_all(rows)
            await self.session.flush()
        return rows

    async def claim(self, outbox_id: int, *, lease_seconds: float) -> OutboxEntry | None:
        """Take a due row for one attempt, pushing it a lease ahead; None if not due or waiting.

        Rows of one object at one account run in id order: a row waits while an older one is
        pending (an update never overtakes the create it depends on).
        """
        older = aliased(OutboxEntry)
        waiting = exists().where(
            older.object_id == OutboxEntry.object_id,
            older.provider_account_id == OutboxEntry.provider_account_id,
            older.kind.like(func.concat(func.split_part(OutboxEntry.kind, ".", 1), ".%")),
            older.id < OutboxEntry.id,
            older.status == "pending",
        )
        statement = (
            update(OutboxEntry)
            .where(
                OutboxEntry.id == outbox_id,
                OutboxEntry.status == "pending",
                OutboxEntry.next_attempt_at <= func.now(),
                ~waiting,
            )
            .values(next_attempt_at=func.now() + func.make_interval(0, 0, 0, 0, 0, 0, lease_seconds))
            .returning(OutboxEntry)
            .execution_options(synchronize_session=False)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def get(self, outbox_id: int) -> OutboxEntry | None:
        return await self.session.get(OutboxEntry, outbox_id)

    async def count_call(self, row: OutboxEntry) -> int:
        """Count a provider call about to be made for ``row``; returns the calls started before it."""
        statement = (
            update(OutboxEntry)
            .where(OutboxEntry.id == row.id)
            .values(calls=OutboxEntry.calls + 1)
            .returning(OutboxEntry.calls - 1)
            .execution_options(synchronize_session=False)
        )
        return int((await self.session.execute(statement)).scalar_one())

    async def finish(self, row: OutboxEntry, *, called: bool = False) -> None:
        """Mark ``row`` done; ``called``: the provider was called for it, which ``calls`` then
        shows (at least 1: a charge or refund counted its calls before making them). A row done
        without a call is a change the provider never heard of (``EventRepository.change_sent``).
        What its attempts sent (``sent``: a customer's email and name, say) is not kept past then."""
        values: dict[str, object] = {"status": "done", "done_at": func.now(), "last_error": None, "sent": None}
        if called:
            values["calls"] = func.greatest(OutboxEntry.calls, 1)
        await self._set(row.id, **values)

    async def retry_later(self, row: OutboxEntry, *, delay: float, error: str | None, count: bool) -> datetime | None:
        """Give the row back for another attempt in ``delay`` seconds; returns when that is, or None
        when this attempt no longer holds the row (``_held``)."""
        values: dict[str, object] = {
            "next_attempt_at": func.now() + func.make_interval(0, 0, 0, 0, 0, 0, delay),
            "last_error": None if error is None else _stored(error),
        }
        if count:
            values["attempts"] = OutboxEntry.attempts + 1
        statement = update(OutboxEntry).where(*_held(row)).values(values).returning(OutboxEntry.next_attempt_at)
        return (await self.session.execute(statement.execution_options(synchronize_session=False))).scalar_one_or_none()

    async def fail(self, row: OutboxEntry, error: str) -> None:
        """Only while this attempt holds the row (``_held``). A failed row is sent again as a new row:
        what it sent is not kept."""
        statement = (
            update(OutboxEntry)
            .where(*_held(row))
            .values(
                status="failed",
                done_at=func.now(),
                last_error=_stored(error),
                attempts=OutboxEntry.attempts + 1,
                sent=None,
            )
        )
        await self.session.execute(statement.execution_options(synchronize_session=False))

    async def _set(self, outbox_id: int, **values: object) -> None:
        statement = update(OutboxEntry).where(OutboxEntry.id == outbox_id).values(values)
        await self.session.execute(statement.execution_options(synchronize_session=False))

    async def next_for_object(self, row: OutboxEntry) -> list[int]:
        """Pending rows of the same object and account queued behind ``row``."""
        query = select(OutboxEntry.id).where(
            OutboxEntry.object_id == row.object_id,
            OutboxEntry.provider_account_id == row.provider_account_id,
            OutboxEntry.kind.like(_same_object(row.kind)),
            OutboxEntry.id > row.id,
            OutboxEntry.status == "pending",
        )
        return list((await self.session.execute(query.order_by(OutboxEntry.id).limit(1))).scalars())

    async def latest_per_kind(self, object_type: str, object_id: int) -> list[OutboxEntry]:
        """The newest row of each (kind, account) of one object: what decides its sync status.

        A newer row supersedes an older one of the same kind (a manual sync after a failure, a
        second update that carries the whole current state).
        """
        query = (
            select(OutboxEntry)
            .where(OutboxEntry.object_id == object_id, OutboxEntry.kind.like(f"{object_type}.%"), ~_AT_DELETED_ACCOUNT)
            .order_by(OutboxEntry.kind, OutboxEntry.provider_account_id, OutboxEntry.id.desc())
            .ext(distinct_on(OutboxEntry.kind, OutboxEntry.provider_account_id))
        )
        return list((await self.session.execute(query)).scalars())

    async def failed_for_object(self, object_type: str, object_id: int) -> Sequence[OutboxEntry]:
        latest = await self.latest_per_kind(object_type, object_id)
        return [row for row in latest if row.status == "failed"]

    async def pending_for_object(self, object_type: str, object_id: int) -> list[OutboxEntry]:
        latest = await self.latest_per_kind(object_type, object_id)
        return [row for row in latest if row.status == "pending"]

    async def wake(self, object_type: str, object_id: int) -> list[int]:
        """Make the object's pending rows due now (a manual sync: skip backoff and leases)."""
        statement = (
            update(OutboxEntry)
            .where(
                and_(OutboxEntry.object_id == object_id, OutboxEntry.kind.like(f"{object_type}.%")),
                OutboxEntry.status == "pending",
            )
            .values(next_attempt_at=func.now())
            .returning(OutboxEntry.id)
            .execution_options(synchronize_session=False)
        )
        return list((await self.session.execute(statement)).scalars())

    async def refresh_left_at(self, account_id: int) -> None:
        """Derive again the status of every object with a row left pending or failed at
        ``account_id``, once the account is deleted: those rows no longer count."""
        query = select(OutboxEntry.kind, OutboxEntry.object_id).where(
            OutboxEntry.provider_account_id == account_id, OutboxEntry.status.in_(("pending", "failed"))
        )
        objects = {(kind.partition(".")[0], object_id) for kind, object_id in await self.session.execute(query)}
        for object_type, object_id in sorted(objects):
            await self.refresh_object(object_type, object_id)

    async def refresh_object(self, object_type: str, object_id: int) -> None:
        """Derive the object's sync_status, last_sync_error and synced_at from its outbox rows."""
        model = OBJECT_MODELS.get(object_type)
        if model is None:  # usage records, payments, refunds: their own status shows their provider work
            return
        latest = await self.latest_per_kind(object_type, object_id)
        statuses = {row.status for row in latest}
        errors = sorted((row for row in latest if row.last_error), key=lambda row: row.id)
        values: dict[str, object]
        if not latest:
            values = {"sync_status": "none", "last_sync_error": None}
        elif "pending" in statuses:
            # While retrying, the last transient error is shown too: "why is this taking so long".
            values = {"sync_status": "pending", "last_sync_error": errors[-1].last_error if errors else None}
        elif "failed" in statuses:
            failed = [row for row in errors if row.status == "failed"]
            values = {"sync_status": "failed", "last_sync_error": failed[-1].last_error if failed else None}
        else:
            values = {"sync_status": "synced", "last_sync_error": None, "synced_at": func.now()}
        statement = update(model).where(model.id == object_id).values(values)
        await self.session.execute(statement.execution_options(synchronize_session=False))
