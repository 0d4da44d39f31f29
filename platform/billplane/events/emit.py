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

# The fan-out's endpoints, as a CTE named ``w`` (the fan-outs of the billing run and of a new
# customer use it too). Locked FOR KEY SHARE: an endpoint whose delete commits while the statement
# runs (its snapshot still shows it) is waited for, then skipped. A plain read queued a delivery
# for it anyway, whose foreign key check then failed the writer's whole transaction. The lock
# waits for nothing else: not for the worker's updates of the endpoint, nor for other writers.
# MATERIALIZED: locked once per statement, however many events it writes.
ENABLED_ENDPOINTS_SELECT = "SELECT id, enabled_events FROM webhook_endpoints WHERE status = 'enabled' FOR KEY SHARE"
ENABLED_ENDPOINTS = f"w AS MATERIALIZED ({ENABLED_ENDPOINTS_SELECT})"

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
