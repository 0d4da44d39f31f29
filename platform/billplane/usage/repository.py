"""All SQL for usage records: the batch insert, its lookups, listing and the period summary."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Row, and_, any_, bindparam, func, select, text, true
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from billplane.billing.models import TestClock
from billplane.catalog.models import Plan
from billplane.customers.models import Customer
from billplane.db.mixins import MAX_ID
from billplane.db.repository import page_records
from billplane.provider_accounts.models import ProviderAccount
from billplane.subscriptions.models import Subscription, UsageRecord
from billplane.sync.channel import OUTBOX_CHANNEL, notify_payload

Key = tuple[int, str]  # (subscription_id, client_event_id): what makes a record a duplicate

_PENDING = aliased(Plan, name="pending_plan")  # the plan a change at the period's end moves to

_IDS = bindparam("ids", type_=ARRAY(BigInteger))

# The subscriptions a batch names, share-locked first, in their own statement. A billing run that
# holds one (FOR UPDATE) is summing its ended period's usage, so the batch waits for it and then
# checks its records against the new period. Read without the lock, a record of the ended period
# was accepted after the run had summed it (its insert waited on the foreign key only), and no
# invoice ever counted it. A batch that locks first makes the run skip that subscription (SKIP
# LOCKED) until the batch has committed. In order of id: two batches lock in the same order.
_LOCK = (
    select(Subscription.id).where(Subscription.id == any_(_IDS)).order_by(Subscription.id).with_for_update(read=True)
)

# What the rules need of the locked subscriptions, in one query whatever the batch. Not locking:
# after a wait, PostgreSQL re-checks a locking statement on the changed subscription row only,
# joined to the plan and clock rows it read before the wait, so a plan change made the row drop
# out ("no such subscription") and a clock advance left the old time. Run after the lock, with a
# snapshot of its own (read committed), it sees what the change committed.
_METERS = (
    select(
        Subscription.id,
        Subscription.status,
        Subscription.ended_at,
        Subscription.current_period_start,
        Subscription.current_period_end,
        Subscription.provider,
        Subscription.provider_account_id,
        Plan.pricing_model,
        TestClock.frozen_time.label("clock_time"),
        Subscription.cancel_at_period_end,
        _PENDING.pricing_model.label("pending_pricing_model"),
        Subscription.metered_since,
    )
    .join(Plan, Plan.id == Subscription.plan_id)
    .outerjoin(_PENDING, _PENDING.id == Subscription.pending_plan_id)
    .join(Customer, Customer.id == Subscription.customer_id)
    .outerjoin(TestClock, TestClock.id == Customer.test_clock_id)
    .where(Subscription.id == any_(_IDS))
)

# The whole batch in one statement: the records, their outbox rows for providers that bill usage,
# and the workers' notification. Arrays keep the SQL text the same for 1 record or 1,000, and
# ON CONFLICT leaves a record stored before (or by a concurrent request) alone: the unique index
# decides, not a pre-check. NOTIFY is sent only if an outbox row was written.
_INSERT_BATCH = text(
    """
    WITH new AS (
        INSERT INTO usage_records (subscription_id, quantity, "timestamp", client_event_id)
        SELECT * FROM unnest(
            CAST(:subscription_ids AS bigint[]), CAST(:quantities AS bigint[]),
            CAST(:timestamps AS timestamptz[]), CAST(:client_event_ids AS text[])
        )
        ON CONFLICT (subscription_id, client_event_id) DO NOTHING
        RETURNING id, subscription_id, client_event_id
    ), queued AS (
        INSERT INTO outbox (kind, object_id, provider_account_id)
        SELECT 'usage.report', new.id, reported.account_id
        FROM new
        JOIN unnest(CAST(:report_subscriptions AS bigint[]), CAST(:report_accounts AS bigint[]))
            AS reported (subscription_id, account_id) USING (subscription_id)
        ORDER BY new.id
        RETURNING id
    ), notified AS (
        SELECT pg_notify(:channel, :payload) FROM queued LIMIT 1
    )
    SELECT id, subscription_id, client_event_id, (SELECT count(*) FROM notified) AS notified FROM new
    """
)

_STORED = text(
    """
    SELECT u.id, u.subscription_id, u.client_event_id
    FROM usage_records u
    JOIN unnest(CAST(:subscription_ids AS bigint[]), CAST(:client_event_ids AS text[])) AS k (subscription_id, event)
        ON u.subscription_id = k.subscription_id AND u.client_event_id = k.event
    """
)


def _in_period(start: Any, end: Any) -> ColumnElement[bool]:
    return and_(
        UsageRecord.subscription_id == Subscription.id, UsageRecord.timestamp >= start, UsageRecord.timestamp < end
    )


def _summary_statement() -> Any:
    # From when the plan became metered, if a change made it so in this period (greatest() skips a
    # NULL): the usage the period's invoice will bill (``periods.usage_start``).
    counted_from = func.greatest(Subscription.current_period_start, Subscription.metered_since)
    in_period = _in_period(counted_from, Subscription.current_period_end)
    totals = (
        select(
            func.coalesce(func.sum(UsageRecord.quantity), 0).label("total"),
            func.coalesce(func.max(UsageRecord.quantity), 0).label("highest"),
            func.count().label("records"),
        )
        .where(in_period)
        .lateral("totals")
    )
    last = (
        select(UsageRecord.quantity)
        .where(in_period)
        .order_by(UsageRecord.timestamp.desc(), UsageRecord.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return (
        select(
            Subscription.id,
            Subscription.plan_id,
            Subscription.current_period_start,
            Subscription.current_period_end,
            Plan.usage_aggregation,
            totals.c.total,
            totals.c.highest,
            totals.c.records,
            func.coalesce(last, 0).label("last"),
        )
        .join(Plan, Plan.id == Subscription.plan_id)
        .join(totals, true())
        .where(Subscription.id == bindparam("subscription_id"))
    )


_SUMMARY = _summary_statement()


class UsageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def meters(self, subscription_ids: Iterable[int]) -> list[Row[Any]]:
        """The subscriptions among ``subscription_ids``, share-locked until the transaction ends."""
        params = {"ids": sorted(set(subscription_ids))}
        await self.session.execute(_LOCK, params)
        return list(await self.session.execute(_METERS, params))

    async def account_providers(self, tenant_id: int, account_ids: Iterable[int]) -> dict[int, str]:
        """Provider names of the tenant's live accounts among ``account_ids`` (a subscription not
        yet mirrored names its account but not its provider)."""
        query = select(ProviderAccount.id, ProviderAccount.provider).where(
            ProviderAccount.id == any_(bindparam("ids", type_=ARRAY(BigInteger))),
            ProviderAccount.tenant_id == tenant_id,
            ProviderAccount.deleted_at.is_(None),
        )
        return {row.id: row.provider for row in await self.session.execute(query, {"ids": sorted(set(account_ids))})}

    async def insert_batch(
        self,
        records: Sequence[tuple[int, int, datetime, str]],
        reports: dict[int, int],
        *,
        tenant_id: int,
        schema: str,
    ) -> dict[Key, int]:
        """Store ``records`` (subscription_id, quantity, timestamp, client_event_id) unless stored
        before, queueing a ``usage.report`` for each new record of a subscription in ``reports``
        (subscription id -> provider account id). Returns the new records' ids by key."""
        subscription_ids, quantities, timestamps, events = (list(column) for column in zip(*records, strict=True))
        params = {
            "subscription_ids": subscription_ids,
            "quantities": quantities,
            "timestamps": timestamps,
            "client_event_ids": events,
            "report_subscriptions": list(reports),
            "report_accounts": list(reports.values()),
            "channel": OUTBOX_CHANNEL,
            "payload": notify_payload(tenant_id, schema),
        }
        rows = await self.session.execute(_INSERT_BATCH, params)
        # Unpacked, not by attribute: a named lookup per row costs a measurable share of a batch.
        return {(subscription_id, event): record_id for record_id, subscription_id, event, _ in rows}

    async def stored(self, keys: Iterable[Key]) -> dict[Key, int]:
        """Ids of the records already stored under these keys."""
        pairs = sorted(set(keys))
        if not pairs:
            return {}
        params = {"subscription_ids": [key[0] for key in pairs], "client_event_ids": [key[1] for key in pairs]}
        rows = await self.session.execute(_STORED, params)
        return {(row.subscription_id, row.client_event_id): row.id for row in rows}

    async def page(self, subscription_id: int | None, *, after: int | None, limit: int) -> list[Row[Any]]:
        where: list[ColumnElement[bool]] = []
        if subscription_id is not None:
            where.append(UsageRecord.subscription_id == subscription_id)
        return await page_records(self.session, UsageRecord, *where, after=after, limit=limit)

    async def summary(self, subscription_id: int) -> Row[Any] | None:
        if not 1 <= subscription_id <= MAX_ID:
            return None
        return (await self.session.execute(_SUMMARY, {"subscription_id": subscription_id})).one_or_none()
