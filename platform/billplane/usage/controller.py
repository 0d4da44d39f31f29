"""/v1/usage-records and /v1/subscriptions/{id}/usage"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.auth import principal_of, runtime_of
from billplane.api.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, decode_cursor
from billplane.api.sessions import READ_ONE
from billplane.db.mixins import MAX_ID
from billplane.usage.schemas import (
    UsageBatchBody,
    UsageBatchResult,
    UsageRecord,
    UsageSummary,
    cut_to_microseconds,
)
from billplane.usage.service import UsageService


async def provide_usage_service(
    request: Request[Any, Any, Any], tenant_session: NamedDependency[AsyncSession]
) -> UsageService:
    principal = principal_of(request)
    return UsageService(
        tenant_session,
        tenant_id=principal.tenant_id,
        schema=principal.schema_name,
        plugins=runtime_of(request).plugins,
    )


class UsageRecordController(Controller):
    path = "/v1/usage-records"
    tags = ["usage"]
    security = [{"apiKey": []}]
    dependencies = {"usage": Provide(provide_usage_service)}

    @post("/", operation_id="createUsageRecords", status_code=201)
    async def create_usage_records(
        self, request: Request[Any, Any, Any], data: UsageBatchBody, usage: NamedDependency[UsageService]
    ) -> UsageBatchResult:
        """Report up to 1,000 usage records of metered subscriptions at once.

        Each record is judged alone and the answer (201, whatever the outcomes) lists one outcome
        per record, in request order:
        `accepted` (stored now, with its `id`), `duplicate` (a record with the same subscription and
        `client_event_id` was stored before, by an earlier request or earlier in this batch: not
        counted twice) or `refused` with the `field` at fault and the `reason` (no such subscription,
        a plan that is not metered, a canceled, ended or incomplete subscription, a `timestamp`
        outside the subscription's open period, before a change made its plan metered, or in the
        future). A malformed body (or more than 1,000 records) is a 422 and nothing is stored.
        Timestamps are kept to the microsecond: finer digits are cut.
        """
        return await usage.ingest(cut_to_microseconds(await request.body(), data))

    @get("/", operation_id="listUsageRecords", opt=READ_ONE)
    async def list_usage_records(
        self,
        *,
        usage: NamedDependency[UsageService],
        subscription_id: Annotated[
            int | None, QueryParameter(ge=1, le=MAX_ID, description="This subscription's records only.")
        ] = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[UsageRecord]:
        """List stored usage records, oldest first, optionally of one subscription."""
        rows, next_cursor = await usage.page(subscription_id, after=decode_cursor(cursor), limit=limit)
        return Page(data=[UsageRecord.of(row) for row in rows], next_cursor=next_cursor)


class SubscriptionUsageController(Controller):
    path = "/v1/subscriptions/{subscription_id:int}/usage"
    tags = ["usage"]
    security = [{"apiKey": []}]
    dependencies = {"usage": Provide(provide_usage_service)}

    @get("/", operation_id="getSubscriptionUsage", opt=READ_ONE)
    async def get_subscription_usage(
        self, subscription_id: FromPath[int], usage: NamedDependency[UsageService]
    ) -> UsageSummary:
        """A metered subscription's usage in its current period (from the change that made its plan
        metered, if one did in this period), aggregated as its plan says (`sum`, `max` or `last`);
        404 for a subscription of another tenant, 422 if not metered."""
        return await usage.summary(subscription_id)
