"""``emit``: record a state change as an event, in the caller's transaction.

Every service that changes a tenant's object calls this before its transaction commits, so an
event exists exactly when its change does (no change without its event, no event for a change
that rolled back).

The same statement fans the event out: it queues a ``webhook_deliveries`` row for every enabled
endpoint subscribed to its type and, if it queued any, notifies the workers
(``WEBHOOKS_CHANNEL``, delivered by PostgreSQL at commit, dropped on rollback). Deliveries thus
commit with their event or not at all: a crash can delay one (the worker's periodic sweep finds
every due delivery), never lose it. A tenant with no endpoint pays for one index-less look at an
empty table.
"""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.events.types import MATCHES_SQL

WEBHOOKS_CHANNEL = "billplane_webhooks"


def endpoints_taking(events: str) -> str:
    """SQL: the enabled endpoints (``id``, ``enabled_events``) that take at least one event of
    ``events`` (an earlier CTE of the statement, with a ``type`` column), locked FOR KEY SHARE.

    The lock: an endpoint whose delete commits while the statement runs (its snapshot still shows
    it) is waited for, then skipped. A plain read queued a delivery for it anyway, whose foreign
    key check then failed the writer's whole transaction. It is for the deliveries' foreign key,
    so it covers the endpoints the statement queues deliveries to and no other: deleting an
    endpoint that takes none of the events does not wait for the writer (a billing run's batch).
    It waits for nothing but a delete: not for the worker's updates of the endpoint, nor for other
    writers, nor for a change of its filter (which endpoints take the events is read from the
    statement's snapshot, as a plain read would; a narrowing that overlapped the writer is caught
    when the delivery is claimed, ``Claimed.subscribed``). The distinct types first: an endpoint
    that takes none of a billing run's thousands of events is checked against a few types.
    """
    return (
        "SELECT w.id, w.enabled_events FROM webhook_endpoints w WHERE w.status = 'enabled' "
        f"AND EXISTS (SELECT FROM (SELECT DISTINCT type FROM {events}) AS e WHERE {MATCHES_SQL}) FOR KEY SHARE OF w"
    )


# The fan-out's endpoints, as a CTE named ``w`` of the events of CTE ``e`` (the billing run's
# fan-out uses it too). MATERIALIZED: locked once per statement, however many events it writes.
ENABLED_ENDPOINTS = f"w AS MATERIALIZED ({endpoints_taking('e')})"

# The notification names the schema only; workers check it against the tenants table.
_EMIT = text(
    "WITH e AS (INSERT INTO events (type, object_type, object_id, data) "
    f"VALUES (:type, :object_type, :object_id, :data) RETURNING id, type), {ENABLED_ENDPOINTS}, "
    "queued AS (INSERT INTO webhook_deliveries (endpoint_id, event_id) "
    f"SELECT w.id, e.id FROM e JOIN w ON {MATCHES_SQL} "
    "RETURNING 1) "
    f"SELECT pg_notify('{WEBHOOKS_CHANNEL}', current_schema()) FROM (SELECT 1 FROM queued LIMIT 1) AS any_queued"
).bindparams(bindparam("data", type_=JSONB))


async def emit(session: AsyncSession, type_: str, object_type: str, object_id: int, data: Any) -> None:
    """Record event ``type_`` (``subscription.updated``) about one object; ``data`` is the object
    as the API shows it (a msgspec Struct or plain JSON-able values)."""
    values = {"type": type_, "object_type": object_type, "object_id": object_id, "data": msgspec.to_builtins(data)}
    await session.execute(_EMIT, values)
