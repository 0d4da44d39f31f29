"""Usage ingestion and reads. Never commits: the request owns the transaction.

A batch costs a fixed number of statements whatever its size: two to lock and then load the
subscriptions it names, one to store its records (with their outbox rows), and one more only when
some records turn out to be duplicates or are refused (to tell a retried record from a new one).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from litestar.exceptions import NotFoundException
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.pagination import page_of
from billplane.api.problems import InvalidFieldError
from billplane.plugins.contract import Capability
from billplane.plugins.errors import UnknownProviderError
from billplane.plugins.host import PluginHost
from billplane.usage.repository import Key, UsageRepository
from billplane.usage.rules import Meter, refusal
from billplane.usage.schemas import UsageBatch, UsageBatchResult, UsageOutcome, UsageSummary


class UsageService:
    def __init__(self, session: AsyncSession, *, tenant_id: int, schema: str, plugins: PluginHost | None) -> None:
        self.repository = UsageRepository(session)
        self.tenant_id = tenant_id
        self.schema = schema
        self.plugins = plugins

    async def ingest(self, batch: UsageBatch) -> UsageBatchResult:
        """Store the batch's acceptable records once each; one outcome per record, in request order."""
        records = batch.records
        meters = await self._meters({record.subscription_id for record in records})
        outcomes: list[UsageOutcome | None] = [None] * len(records)
        first: dict[Key, int] = {}  # key -> index of its first storable record in the batch
        repeats: list[int] = []  # storable records whose key came earlier in the batch
        retried: dict[int, Key] = {}  # refused records that may have been stored before
        for index, record in enumerate(records):
            key = (record.subscription_id, record.client_event_id)
            meter = meters.get(record.subscription_id)
            refused = refusal(meter, record.timestamp)
            if refused is not None:
                outcomes[index] = _outcome("refused", key, field=refused.field, reason=refused.reason)
                if meter is not None:
                    retried[index] = key
            elif key in first:
                repeats.append(index)
            else:
                first[key] = index
        new = await self._insert(records, first, meters) if first else {}
        conflicted = [key for key in first if key not in new]
        # A refused record whose event this batch stored is no retry: it keeps its own refusal.
        retried = {index: key for index, key in retried.items() if key not in new}
        stored = await self.repository.stored([*conflicted, *retried.values()]) if conflicted or retried else {}
        for key, index in first.items():
            status = "accepted" if key in new else "duplicate"
            outcomes[index] = _outcome(status, key, record_id=new.get(key, stored.get(key)))
        for index in repeats:
            key = (records[index].subscription_id, records[index].client_event_id)
            outcomes[index] = _outcome("duplicate", key, record_id=new.get(key, stored.get(key)))
        for index, key in retried.items():
            # Stored by an earlier request, since refused (the period closed, the subscription
            # ended): a retry must learn that its record counts, not that it was lost.
            if key in stored:
                outcomes[index] = _outcome("duplicate", key, record_id=stored[key])
        return UsageBatchResult.of([outcome for outcome in outcomes if outcome is not None])

    async def _insert(self, records: Sequence[Any], first: dict[Key, int], meters: dict[int, Meter]) -> dict[Key, int]:
        rows = [
            (records[index].subscription_id, records[index].quantity, records[index].timestamp, key[1])
            for key, index in first.items()
        ]
        reports = {
            meter.id: meter.report_to
            for meter in (meters[subscription_id] for subscription_id, _ in first)
            if meter.report_to is not None
        }
        return await self.repository.insert_batch(rows, reports, tenant_id=self.tenant_id, schema=self.schema)

    async def _meters(self, subscription_ids: set[int]) -> dict[int, Meter]:
        rows = await self.repository.meters(subscription_ids)
        unnamed = {row.provider_account_id for row in rows if row.provider_account_id is not None and not row.provider}
        providers = await self.repository.account_providers(self.tenant_id, unnamed) if unnamed else {}
        now = datetime.now(UTC)
        return {
            row.id: Meter(
                id=row.id,
                status=row.status,
                pricing_model=row.pricing_model,
                period_start=row.current_period_start,
                period_end=row.current_period_end,
                ended=row.ended_at is not None,
                now=row.clock_time or now,
                report_to=self._report_to(row, providers),
                renews_metered=not row.cancel_at_period_end and row.pending_pricing_model in {None, "metered"},
                metered_since=row.metered_since,
            )
            for row in rows
        }

    def _report_to(self, row: Row[Any], providers: dict[int, str]) -> int | None:
        """The account to report this subscription's usage to: its own, if its plugin bills usage."""
        account = row.provider_account_id
        if account is None or self.plugins is None:
            return None
        provider = row.provider or providers.get(account)
        if provider is None:  # the account was deleted: nobody to report to
            return None
        try:
            capabilities = self.plugins.get(provider).capabilities
        except UnknownProviderError:
            return None
        return account if Capability.USAGE in capabilities else None

    async def page(
        self, subscription_id: int | None, *, after: int | None, limit: int
    ) -> tuple[list[Row[Any]], str | None]:
        rows = await self.repository.page(subscription_id, after=after, limit=limit)
        return page_of(rows, limit)

    async def summary(self, subscription_id: int) -> UsageSummary:
        row = await self.repository.summary(subscription_id)
        if row is None:  # another tenant's id looks exactly like an id that never existed
            raise NotFoundException(f"no subscription {subscription_id}")
        if row.usage_aggregation is None:
            raise InvalidFieldError("subscription_id", "the subscription's plan is not metered", source="path")
        quantity = {"sum": row.total, "max": row.highest, "last": row.last}[row.usage_aggregation]
        return UsageSummary(
            subscription_id=row.id,
            plan_id=row.plan_id,
            aggregation=row.usage_aggregation,
            period_start=row.current_period_start,
            period_end=row.current_period_end,
            quantity=int(quantity),
            records=row.records,
        )


def _outcome(
    result: Any, key: Key, *, record_id: int | None = None, field: str | None = None, reason: str | None = None
) -> UsageOutcome:
    return UsageOutcome(
        result=result, client_event_id=key[1], subscription_id=key[0], id=record_id, field=field, reason=reason
    )
