"""SQL for stored idempotent responses that is not part of a request (the daily sweep)."""

from __future__ import annotations

from sqlalchemy import delete, func
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.idempotency.models import AdminIdempotencyKey, IdempotencyKey


async def purge_expired(session: AsyncSession, model: type[IdempotencyKey | AdminIdempotencyKey]) -> int:
    """Delete every expired record of ``model``'s table; return how many."""
    result = await session.execute(delete(model).where(model.expires_at < func.now()))
    return int(result.rowcount)  # type: ignore[attr-defined]
