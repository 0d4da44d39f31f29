"""API shapes for events and webhook endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from sqlalchemy import Row

from billplane.api.pattern_words import worded
from billplane.api.types import LongText, Metadata, Patch, example_body
from billplane.events.models import Event as EventRow
from billplane.events.models import WebhookDelivery as DeliveryRow
from billplane.events.models import WebhookEndpoint as EndpointRow

EventPattern = Annotated[
    str,
    msgspec.Meta(
        max_length=100,
        pattern=worded(
            r"^(\*|[a-z_]+(\.[a-z_]+)*\.\*|[a-z_]+(\.[a-z_]+)+)$",
            "must be an event type (invoice.paid), every type under a prefix (invoice.*), or *",
        ),
        description="An event type (`invoice.paid`), every type under a prefix (`invoice.*`), or `*`.",
    ),
]
EnabledEvents = Annotated[
    list[EventPattern], msgspec.Meta(max_length=100, description="Event types to receive; empty: every type.")
]
EndpointURL = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=2048,
        description="https:// to a public address (http:// to loopback only where the operator allows it).",
        examples=["https://example.com/billing/webhooks"],
    ),
]


class Event(msgspec.Struct, kw_only=True):
    id: int
    type: str
    object_type: str
    object_id: int
    # The object as the API showed it right after the change.
    data: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, row: EventRow | Row[Any]) -> Event:
        return cls(
            id=row.id,
            type=row.type,
            object_type=row.object_type,
            object_id=row.object_id,
            data=row.data,
            created_at=row.created_at,
        )


class WebhookEndpointCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: EndpointURL
    description: LongText | None = None
    enabled_events: EnabledEvents = msgspec.field(default_factory=list)
    metadata: Metadata = msgspec.field(default_factory=dict)


class WebhookEndpointUpdate(Patch):
    """Only the fields sent change. `status: enabled` turns a disabled endpoint back on."""

    url: EndpointURL | msgspec.UnsetType = msgspec.UNSET
    description: LongText | msgspec.UnsetType | None = msgspec.UNSET
    enabled_events: EnabledEvents | msgspec.UnsetType = msgspec.UNSET
    metadata: Metadata | msgspec.UnsetType = msgspec.UNSET
    status: Literal["enabled", "disabled"] | msgspec.UnsetType = msgspec.UNSET


class WebhookEndpoint(msgspec.Struct, kw_only=True):
    id: int
    url: str
    description: str | None
    enabled_events: list[str]
    metadata: dict[str, str]
    # enabled, or disabled (by the tenant, or by billplane after repeated failure: see disabled_reason).
    status: str
    disabled_reason: str | None
    # Failed delivery attempts in a row; any 2xx resets it.
    consecutive_failures: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: EndpointRow | Row[Any]) -> WebhookEndpoint:
        return cls(
            id=row.id,
            url=row.url,
            description=row.description,
            enabled_events=list(row.enabled_events),
            metadata=row.metadata_,
            status=row.status,
            disabled_reason=row.disabled_reason,
            consecutive_failures=row.consecutive_failures,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class WebhookEndpointWithSecret(WebhookEndpoint, kw_only=True):
    # The signing secret (Standard Webhooks: `whsec_` + base64). Shown in this response only:
    # store it now. Lost: rotate it (POST /v1/webhook-endpoints/{id}/rotate-secret).
    secret: str

    @classmethod
    def with_secret(cls, row: EndpointRow, secret: str) -> WebhookEndpointWithSecret:
        shown = WebhookEndpoint.of(row)
        return cls(**msgspec.structs.asdict(shown), secret=secret)


class ReplayRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # Events created at or after this time, at most 30 days ago; omitted: the last 24 hours.
    since: datetime | None = None


class ReplayResult(msgspec.Struct, kw_only=True):
    # Deliveries queued: one per event since `since` that the endpoint subscribes to (events
    # waiting for their turn to be delivered to it are not queued twice; those in flight or
    # waiting for a retry are queued again, behind the older events of their object).
    queued: int


class WebhookDelivery(msgspec.Struct, kw_only=True):
    id: int
    endpoint_id: int
    event_id: int
    # pending (waiting for its next attempt), succeeded, or failed (gave up, or the endpoint was disabled).
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None

    @classmethod
    def of(cls, row: DeliveryRow | Row[Any]) -> WebhookDelivery:
        return cls(
            id=row.id,
            endpoint_id=row.endpoint_id,
            event_id=row.event_id,
            status=row.status,
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
            last_status_code=row.last_status_code,
            last_error=row.last_error,
            created_at=row.created_at,
            delivered_at=row.delivered_at,
        )


WebhookEndpointCreateBody = Annotated[
    WebhookEndpointCreate,
    example_body(
        "Invoices and subscriptions",
        {
            "url": "https://example.com/billing/webhooks",
            "description": "accounting",
            "enabled_events": ["invoice.*", "subscription.canceled"],
            "metadata": {"team": "finance"},
        },
    ),
]
WebhookEndpointUpdateBody = Annotated[
    WebhookEndpointUpdate, example_body("Turn a disabled endpoint back on", {"status": "enabled"})
]
ReplayBody = Annotated[ReplayRequest, example_body("The last day", {"since": "2026-11-26T00:00:00Z"})]
