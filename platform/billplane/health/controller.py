"""GET /health: 200 when the database answers, 503 problem details when it does not."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgspec
from litestar import Request, get
from sqlalchemy import text

from billplane.api.auth import runtime_of
from billplane.api.problems import ServiceUnavailableError

DATABASE_TIMEOUT_SECONDS = 2.0
logger = logging.getLogger("billplane.health")


class Health(msgspec.Struct, kw_only=True):
    status: str
    database: str


@get("/health", operation_id="health", tags=["operations"], security=[])
async def health(request: Request[Any, Any, Any]) -> Health:
    """Whether this process can serve: it answers and its database answers within 2 seconds."""
    try:
        async with asyncio.timeout(DATABASE_TIMEOUT_SECONDS):
            async with runtime_of(request).database.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except Exception as exc:
        logger.warning("health check: database unreachable: %s", type(exc).__name__)
        raise ServiceUnavailableError("the database is unreachable") from exc
    return Health(status="ok", database="ok")
