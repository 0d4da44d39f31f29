"""Idempotency-Key handling (Stripe semantics), inside the request's own transaction.

- A POST with ``Idempotency-Key`` takes a transaction-scoped advisory lock on (scope, key). If
  another request holds it, this one is 409: the first is still in flight.
- A stored response for the key is replayed (same status and body, ``Idempotent-Replayed: true``);
  the same key with a different method, path, query or body is 422.
- Otherwise the handler runs and its response is stored in the same transaction as its writes,
  so a crash commits both or neither: a retry never repeats a committed write. A request that
  fails rolls back and stores nothing, so it may be retried with the same key.
- Rows expire after 24 hours; each stored response deletes a few expired rows, and
  ``billplane idempotency purge`` sweeps every schema.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from litestar import Request, Response
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.problems import ConflictError, InvalidFieldError
from billplane.idempotency.models import AdminIdempotencyKey, IdempotencyKey
from billplane.idempotency.sealing import ResponseSealer, UnreadableResponseError

# The tenant table or the operator's (control) table: the same columns.
KeyModel = TypeVar("KeyModel", IdempotencyKey, AdminIdempotencyKey)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
TTL = timedelta(hours=24)
PURGE_BATCH = 20
_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")  # visible ASCII, like Stripe's keys


class IdempotentReplayError(Exception):
    """Raised instead of running the handler: the stored first response is the answer."""

    def __init__(self, status: int, content_type: str, body: bytes) -> None:
        super().__init__("idempotent replay")
        self.status = status
        self.content_type = content_type
        self.body = body


@dataclass(slots=True)
class PendingKey:
    scope: str
    key: str
    fingerprint: str
    method: str
    path: str


@dataclass(slots=True)
class CapturedResponse:
    status: int
    content_type: str
    body: bytes


async def fingerprint(request: Request[Any, Any, Any], sealer: ResponseSealer) -> str:
    # Keyed: a body can hold a secret (provider credentials), and an unkeyed hash of a short
    # secret could be guessed offline from a copy of the database.
    digest = hmac.new(sealer.fingerprint_key, digestmod=hashlib.sha256)
    for part in (request.method, request.url.path, str(sorted(request.query_params.multi_items()))):
        digest.update(part.encode())
        digest.update(b"\n")
    digest.update(await request.body())
    return digest.hexdigest()


async def begin(
    session: AsyncSession,
    model: type[KeyModel],
    scope: str,
    request: Request[Any, Any, Any],
    sealer: ResponseSealer,
) -> PendingKey | None:
    """Check the request's key; raise to replay or refuse; else return what to store at the end."""
    key = request.headers.get(HEADER)
    if request.method != "POST" or key is None:
        return None
    if not _KEY_PATTERN.fullmatch(key):
        raise InvalidFieldError(HEADER, "must be 1-255 visible ASCII characters", source="header")
    lock = func.pg_try_advisory_xact_lock(func.hashtextextended(f"{scope}:{key}", 0))
    if not await session.scalar(select(lock)):
        raise ConflictError("a request with this Idempotency-Key is still in progress; retry later")
    pending = PendingKey(scope, key, await fingerprint(request, sealer), request.method, request.url.path)
    stored = await session.scalar(select(model).where(model.key == key))
    if stored is not None and stored.expires_at > datetime.now(UTC):
        if stored.fingerprint != pending.fingerprint:
            raise InvalidFieldError(
                HEADER, "this key was already used with a different request; use a new key", source="header"
            )
        try:
            body = sealer.open(scope, key, stored.response_body)
        except UnreadableResponseError as exc:
            # Never run the request again: its first execution committed.
            raise ConflictError(
                "the first response to this Idempotency-Key can no longer be read; use a new key"
            ) from exc
        raise IdempotentReplayError(stored.response_status, stored.response_content_type, body)
    if stored is not None:  # expired: the key may be used afresh
        await session.delete(stored)
        await session.flush()
    return pending


async def finish(
    session: AsyncSession,
    model: type[KeyModel],
    pending: PendingKey,
    response: CapturedResponse,
    sealer: ResponseSealer,
) -> None:
    """Store the first response, in the request's transaction, and purge a few expired keys."""
    session.add(
        model(
            key=pending.key,
            fingerprint=pending.fingerprint,
            method=pending.method,
            path=pending.path,
            response_status=response.status,
            response_content_type=response.content_type,
            response_body=sealer.seal(pending.scope, pending.key, response.body),
            expires_at=datetime.now(UTC) + TTL,
        )
    )
    # SKIP LOCKED: an expired row another request holds (it deleted it to reuse its key) is passed
    # over. Waiting for it held this request as long as that one ran, and two deadlocked.
    expired = (
        select(model.id)
        .where(model.expires_at < func.now())
        .limit(PURGE_BATCH)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    await session.execute(delete(model).where(model.id.in_(expired)))
    await session.flush()


def replay_handler(_request: Request[Any, Any, Any], exc: IdempotentReplayError) -> Response[bytes]:
    return Response(exc.body, status_code=exc.status, media_type=exc.content_type, headers={REPLAYED_HEADER: "true"})
