"""``emit``: record a state change as an event, in the caller's transaction.

Every service that changes a tenant's object calls this before its transaction commits, so an
event exists exactly when its change does (no change without its event, no event for a change
that rolled back). Delivery to webhook endpoints happens later, from the events table.
"""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.events.models import Event


async def emit(session: AsyncSession, type_: str, object_type: str, object_id: int, data: Any) -> None:
    """Record event ``type_`` (``subscription.updated``) about one object; ``data`` is the object
    as the API shows it (a msgspec Struct or plain JSON-able values)."""
    values = {"type": type_, "object_type": object_type, "object_id": object_id, "data": msgspec.to_builtins(data)}
    await session.execute(insert(Event).values(values))
