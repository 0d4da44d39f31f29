"""/v1/events and /v1/webhook-endpoints"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.auth import principal_of, runtime_of
from billplane.api.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, decode_cursor
from billplane.api.problems import InvalidFieldError
from billplane.api.sessions import READ_ONE
from billplane.api.types import checked_query_times
from billplane.db.mixins import MAX_ID
from billplane.events.options import WebhookOptions, webhook_options
from billplane.events.repository import EventFilters
from billplane.events.schemas import (
    Event,
    ReplayBody,
    ReplayRequest,
    ReplayResult,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEndpointCreateBody,
    WebhookEndpointUpdateBody,
    WebhookEndpointWithSecret,
)
from billplane.events.service import EndpointService, EventService
from billplane.events.vault import EndpointVault

# The replay's only field is optional: the body may be left out (or null), as for an invoice's
# finalize. The same example as the schema's body, on an optional body.
OptionalReplayBody = Annotated[ReplayRequest | None, get_args(ReplayBody)[1]]
# Tests and embedders put their own WebhookOptions here (app.state); else the environment's.
OPTIONS_STATE_KEY = "webhook_options"


def options_of(request: Request[Any, Any, Any]) -> WebhookOptions:
    options: WebhookOptions | None = request.app.state.get(OPTIONS_STATE_KEY)
    return options if options is not None else webhook_options()


async def provide_event_service(tenant_session: NamedDependency[AsyncSession]) -> EventService:
    return EventService(tenant_session)


async def provide_endpoint_service(
    request: Request[Any, Any, Any], tenant_session: NamedDependency[AsyncSession]
) -> EndpointService:
    vault = EndpointVault.from_settings(runtime_of(request).settings)
    return EndpointService(tenant_session, principal_of(request).tenant_id, vault, options_of(request))


class EventController(Controller):
    path = "/v1/events"
    tags = ["events"]
    security = [{"apiKey": []}]
    dependencies = {"events": Provide(provide_event_service)}

    @get("/{event_id:int}", operation_id="getEvent", opt=READ_ONE)
    async def get_event(self, event_id: FromPath[int], events: NamedDependency[EventService]) -> Event:
        """One event by id; 404 if it does not exist or belongs to another tenant."""
        return Event.of(await events.get(event_id))

    @get("/", operation_id="listEvents", opt=READ_ONE)
    async def list_events(
        self,
        *,
        events: NamedDependency[EventService],
        type: Annotated[  # noqa: A002 - the API's name for the filter
            str | None,
            QueryParameter(
                max_length=100,
                pattern=r"^[a-z_]+(\.[a-z_]+)*(\.\*)?$",
                description="An event type (`invoice.paid`) or every type under a prefix (`invoice.*`).",
            ),
        ] = None,
        object_type: Annotated[str | None, QueryParameter(max_length=100, description="With object_id.")] = None,
        object_id: Annotated[int | None, QueryParameter(ge=1, le=MAX_ID, description="With object_type.")] = None,
        created_gte: Annotated[datetime | None, QueryParameter(description="Created at or after.")] = None,
        created_lt: Annotated[datetime | None, QueryParameter(description="Created before.")] = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[Event]:
        """List events, oldest first: by type, by object (`object_type` and `object_id`) or by creation time.

        An event is listed once every transaction that began writing before it has ended, so
        following `next_cursor` never misses one that commits late (ADR 0007). One object's
        events (`object_type` and `object_id`) are listed in id order as soon as they commit.
        """
        if object_id is not None and object_type is None:
            raise InvalidFieldError("object_type", "is required with object_id", source="query")
        checked_query_times(created_gte=created_gte, created_lt=created_lt)
        filters = EventFilters(type, object_type, object_id, created_gte, created_lt)
        rows, next_cursor = await events.page(filters, after=decode_cursor(cursor), limit=limit)
        return Page(data=[Event.of(row) for row in rows], next_cursor=next_cursor)


class WebhookEndpointController(Controller):
    path = "/v1/webhook-endpoints"
    tags = ["webhook endpoints"]
    security = [{"apiKey": []}]
    dependencies = {"endpoints": Provide(provide_endpoint_service)}

    @post("/", operation_id="createWebhookEndpoint", status_code=201)
    async def create_endpoint(
        self, data: WebhookEndpointCreateBody, endpoints: NamedDependency[EndpointService]
    ) -> WebhookEndpointWithSecret:
        """Create an endpoint that receives the tenant's events, signed with the Standard Webhooks scheme.

        The response carries the signing `secret`: it is never shown again (rotate it if lost).
        `enabled_events` lists types (`invoice.paid`), prefixes (`invoice.*`) or `*`; empty means
        every type. The URL must be https to a public address (422 otherwise). A tenant has at
        most 16 endpoints, disabled ones included (409 beyond: delete one first).
        """
        endpoint, secret = await endpoints.create(data)
        return WebhookEndpointWithSecret.with_secret(endpoint, secret)

    @get("/{endpoint_id:int}", operation_id="getWebhookEndpoint")
    async def get_endpoint(
        self, endpoint_id: FromPath[int], endpoints: NamedDependency[EndpointService]
    ) -> WebhookEndpoint:
        """One endpoint by id (without its secret); 404 if it does not exist or belongs to another tenant."""
        return WebhookEndpoint.of(await endpoints.get(endpoint_id))

    @patch("/{endpoint_id:int}", operation_id="updateWebhookEndpoint")
    async def update_endpoint(
        self, endpoint_id: FromPath[int], data: WebhookEndpointUpdateBody, endpoints: NamedDependency[EndpointService]
    ) -> WebhookEndpoint:
        """Change the fields sent. `status: enabled` turns a disabled endpoint back on (replay what it
        missed); `status: disabled` stops deliveries and fails those still waiting."""
        return WebhookEndpoint.of(await endpoints.update(endpoint_id, data))

    @delete("/{endpoint_id:int}", operation_id="deleteWebhookEndpoint", status_code=204)
    async def delete_endpoint(self, endpoint_id: FromPath[int], endpoints: NamedDependency[EndpointService]) -> None:
        """Delete an endpoint and its delivery history; nothing more is sent to it."""
        await endpoints.delete(endpoint_id)

    @post("/{endpoint_id:int}/rotate-secret", operation_id="rotateWebhookEndpointSecret", status_code=200)
    async def rotate_secret(
        self, endpoint_id: FromPath[int], endpoints: NamedDependency[EndpointService]
    ) -> WebhookEndpointWithSecret:
        """Replace the signing secret; the response shows the new one, once. Every attempt from now
        on, retries included, is signed with it. Records `webhook_endpoint.updated` (without the secret)."""
        endpoint, secret = await endpoints.rotate_secret(endpoint_id)
        return WebhookEndpointWithSecret.with_secret(endpoint, secret)

    @post("/{endpoint_id:int}/replay", operation_id="replayWebhookEndpoint", status_code=202)
    async def replay(
        self, endpoint_id: FromPath[int], endpoints: NamedDependency[EndpointService], data: OptionalReplayBody = None
    ) -> ReplayResult:
        """Send the endpoint again every event since `since` (default, or without a body: the last
        24 hours; at most 30 days ago, 422 otherwise) that it subscribes to, in order, with the same
        `webhook-id` as before, so a receiver that saw one already can skip it. An event waiting for its turn is
        not queued twice; one in flight or waiting for a retry is, behind the older events of its
        object. 409 while the endpoint is disabled: enable it first."""
        return ReplayResult(queued=await endpoints.replay(endpoint_id, data.since if data else None))

    @get("/{endpoint_id:int}/deliveries", operation_id="listWebhookDeliveries")
    async def list_deliveries(
        self,
        *,
        endpoint_id: FromPath[int],
        endpoints: NamedDependency[EndpointService],
        status: Annotated[Literal["pending", "succeeded", "failed"] | None, QueryParameter()] = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[WebhookDelivery]:
        """The endpoint's deliveries, oldest first: attempts, last status code and error."""
        rows, next_cursor = await endpoints.deliveries(endpoint_id, status, after=decode_cursor(cursor), limit=limit)
        return Page(data=[WebhookDelivery.of(row) for row in rows], next_cursor=next_cursor)

    @get("/", operation_id="listWebhookEndpoints")
    async def list_endpoints(
        self,
        *,
        endpoints: NamedDependency[EndpointService],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[WebhookEndpoint]:
        """List endpoints, oldest first (without their secrets)."""
        rows, next_cursor = await endpoints.page(after=decode_cursor(cursor), limit=limit)
        return Page(data=[WebhookEndpoint.of(row) for row in rows], next_cursor=next_cursor)
