"""/v1/provider-events: what the tenant's providers reported, and what billplane did with it."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.auth import principal_of, runtime_of
from billplane.api.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, decode_cursor, page_of
from billplane.api.problems import InvalidFieldError
from billplane.db.mixins import MAX_ID
from billplane.sync.refs import EventRef
from billplane.webhooks.event_schemas import ProviderEventRecord
from billplane.webhooks.models import EVENT_STATUSES
from billplane.webhooks.repository import EventRepository
from billplane.webhooks.service import reapply


class ProviderEventController(Controller):
    path = "/v1/provider-events"
    tags = ["provider events"]
    security = [{"apiKey": []}]

    @get("/{provider_event_id:int}", operation_id="getProviderEvent")
    async def get_provider_event(
        self, provider_event_id: FromPath[int], tenant_session: NamedDependency[AsyncSession]
    ) -> ProviderEventRecord:
        """One received provider event; 404 if it does not exist or belongs to another tenant."""
        row = await EventRepository(tenant_session).find(provider_event_id)
        if row is None:
            raise NotFoundException(f"no provider event {provider_event_id}")
        return ProviderEventRecord.of(row)

    @post("/{provider_event_id:int}/reapply", operation_id="reapplyProviderEvent", status_code=202)
    async def reapply_provider_event(
        self,
        request: Request[Any, Any, Any],
        provider_event_id: FromPath[int],
        tenant_session: NamedDependency[AsyncSession],
    ) -> ProviderEventRecord:
        """Apply an ignored event again, once what kept it from being applied is put right (202).

        For an event the database refused (its `detail` says `could not be applied: ...`, fixed
        by a later release) or that waited a day for what it needed (a payment since settled by
        hand). It is `received` again, `detail` saying it was reapplied and why it had been
        ignored, and applied in the background as a new event is: `applied`, or `ignored` again
        with the reason. It may wait again, a day from `reapplied_at` (`received_at` stays when
        it arrived). Applying is safe to repeat: the watermark and the state of what it names
        decide, as for any event. 409 unless the event is `ignored` (a `received` one is still
        to be applied, an `applied` one is done); 404 if it does not exist or belongs to another
        tenant.
        """
        principal = principal_of(request)
        ref = EventRef(principal.tenant_id, principal.schema_name, provider_event_id)
        by = f"through the API (key {principal.key_id})"
        return ProviderEventRecord.of(await reapply(tenant_session, runtime_of(request).jobs, ref, by=by))

    @get("/", operation_id="listProviderEvents")
    async def list_provider_events(
        self,
        *,
        tenant_session: NamedDependency[AsyncSession],
        status: Annotated[
            str | None,
            QueryParameter(enum=EVENT_STATUSES, description="received, applied, or ignored (with the reason)."),
        ] = None,
        provider_account_id: Annotated[
            int | None, QueryParameter(ge=1, le=MAX_ID, description="From this provider account only.")
        ] = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[ProviderEventRecord]:
        """List received provider events, oldest first.

        Every verified webhook event is kept. `ignored` ones changed nothing, and `detail` says
        why: older than what was already applied, about an object billplane does not know (for
        example a subscription created directly at the provider), or of a type billplane does not act on.
        """
        if status is not None and status not in EVENT_STATUSES:  # enum= above only documents it
            raise InvalidFieldError("status", f"must be one of {', '.join(EVENT_STATUSES)}", source="query")
        found = await EventRepository(tenant_session).page(
            status=status, provider_account_id=provider_account_id, after=decode_cursor(cursor), limit=limit
        )
        rows, next_cursor = page_of(found, limit)
        return Page(data=[ProviderEventRecord.of(row) for row in rows], next_cursor=next_cursor)
