"""SQL of the delivery worker: claim one delivery, record its attempt, find what may run next.

Order per object and endpoint: a delivery is not claimed while a delivery of an earlier event
(lower event id) about the same object to the same endpoint is still pending.

A claim leases the delivery by moving its ``next_attempt_at`` to the lease's end, and that value
is the claim's token: an attempt's outcome is recorded only while the row still carries it. An
attempt that outlived its lease (the delivery was claimed again meanwhile, or already recorded)
finds another value there and its outcome is dropped, so it neither counts as an attempt twice
nor overwrites the current holder's result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.events.types import MATCHES_SQL

UNSUBSCRIBED = "the endpoint no longer subscribes to this event"


def no_earlier_pending(qualifier: str = "") -> str:
    """SQL: no delivery of an earlier event about the same object to the same endpoint is pending.

    ``d`` is the delivery, ``e`` its event; ``qualifier``: a quoted schema, for the cross-tenant sweep.
    """
    prefix = f"{qualifier}." if qualifier else ""
    return (
        f"NOT EXISTS (SELECT 1 FROM {prefix}events e2 JOIN {prefix}webhook_deliveries d2 ON d2.event_id = e2.id "
        "WHERE e2.object_type = e.object_type AND e2.object_id = e.object_id AND e2.id < e.id "
        "AND d2.endpoint_id = d.endpoint_id AND d2.status = 'pending')"
    )


NO_EARLIER_PENDING = no_earlier_pending()


def replay_lock(endpoint_id: str) -> str:
    """SQL: the advisory lock key of the replays to endpoint ``endpoint_id`` (SQL) of this tenant.

    A replay holds it exclusively while it queues (``EndpointRepository.replay``); a claim tries it
    shared. One bigint hashed from the schema and the endpoint: the two-int4 keys of the other
    advisory locks are another key space, and a collision only makes a claim skip (or a replay
    wait) for nothing.
    """
    return f"hashtextextended('billplane webhook replay ' || current_schema() || ' ' || ({endpoint_id})::text, 0)"


# Run before the claim, as its own statement: while a replay of the endpoint queues older events,
# a claim would not see them (they are not committed) and would send a newer event first. Not
# granted, the claim takes nothing; the replay's notification at its commit queues the delivery
# again (behind the replayed events of its object). Granted, the lock holds a replay back until
# the claim commits, and the claim's UPDATE, a statement of its own, sees every committed replay.
_NOT_REPLAYING = text(
    f"SELECT pg_try_advisory_xact_lock_shared({replay_lock('d.endpoint_id')}) FROM webhook_deliveries d "
    "WHERE d.id = :delivery_id"
)
# ``subscribed``: whether the endpoint still takes the event. A narrowing of its filter fails the
# waiting deliveries it sees, not one queued by a writer that fanned out on the filter before and
# committed after it (the fan-out's lock waits for deletes only): that one is failed here instead.
_CLAIM = text(
    "UPDATE webhook_deliveries d SET next_attempt_at = now() + make_interval(secs => :lease) "
    "FROM events e, webhook_endpoints w "
    "WHERE d.id = :delivery_id AND d.status = 'pending' AND d.next_attempt_at <= now() "
    f"AND e.id = d.event_id AND w.id = d.endpoint_id AND {NO_EARLIER_PENDING} "
    "RETURNING d.id, d.attempts, d.endpoint_id, e.id AS event_id, e.tx, e.type, e.object_type, e.object_id, "
    "e.data, e.created_at, w.url, w.status AS endpoint_status, w.secret_ciphertext, w.secret_key_id, "
    f"d.next_attempt_at AS leased_until, {MATCHES_SQL} AS subscribed"
)
# An attempt's outcome is recorded under the endpoint's row lock, taken before the delivery's
# (the delivery's update reads the locked row, ``held``): the order of every transaction that
# changes an endpoint and its deliveries. Deleting an endpoint locks its row, then its deliveries
# (the cascade); disabling or narrowing it (a PATCH, ``disable_endpoint`` below) updates its row,
# then fails its waiting deliveries. Delivery first, a recording waited for the endpoint while
# holding what such a change needed next: a deadlock, one of the two aborted. Granted after a
# delete committed, the lock finds no row, and nothing is recorded: the delivery went with its
# endpoint, as its history does. NO KEY UPDATE, what the update of the endpoint takes anyway:
# the fan-outs (FOR KEY SHARE) do not wait for it.
_HELD = "held AS (SELECT id FROM webhook_endpoints WHERE id = :endpoint_id FOR NO KEY UPDATE)"
# Only while this claim holds the row. Not only while pending: a 2xx after the endpoint was
# disabled mid-attempt still reached the receiver, and the row says so.
_SUCCEEDED = text(
    f"WITH {_HELD}, d AS (UPDATE webhook_deliveries d SET status = 'succeeded', attempts = d.attempts + 1, "
    "last_status_code = :status_code, last_error = NULL, delivered_at = now() FROM held "
    "WHERE d.id = :delivery_id AND d.endpoint_id = held.id AND d.next_attempt_at = :leased_until "
    "RETURNING d.endpoint_id) "
    "UPDATE webhook_endpoints w SET consecutive_failures = 0 FROM d WHERE w.id = d.endpoint_id RETURNING w.id"
)
# A failure counts against the endpoint; the delivery waits `delay` or, out of attempts, fails.
_FAILED = text(
    f"WITH {_HELD}, d AS (UPDATE webhook_deliveries d SET attempts = d.attempts + 1, "
    "last_status_code = :status_code, last_error = :error, "
    "status = CASE WHEN :final THEN 'failed' ELSE 'pending' END, "
    "next_attempt_at = now() + make_interval(secs => :delay) FROM held "
    "WHERE d.id = :delivery_id AND d.endpoint_id = held.id AND d.status = 'pending' "
    "AND d.next_attempt_at = :leased_until RETURNING d.endpoint_id, d.next_attempt_at) "
    "UPDATE webhook_endpoints w SET consecutive_failures = w.consecutive_failures + 1 FROM d "
    "WHERE w.id = d.endpoint_id RETURNING w.consecutive_failures, d.next_attempt_at"
)
_FAIL_ONE = text(
    "UPDATE webhook_deliveries SET status = 'failed', last_error = :error "
    "WHERE id = :delivery_id AND status = 'pending' AND next_attempt_at = :leased_until"
)
_DISABLE = text(
    "UPDATE webhook_endpoints SET status = 'disabled', disabled_reason = :reason, updated_at = now() "
    "WHERE id = :endpoint_id AND status = 'enabled' RETURNING id"
)
_FAIL_PENDING = text(
    "UPDATE webhook_deliveries SET status = 'failed', last_error = :error "
    "WHERE endpoint_id = :endpoint_id AND status = 'pending'"
)
# The earliest pending delivery of the next event about the same object to the same endpoint.
_NEXT = text(
    "SELECT d.id FROM webhook_deliveries d JOIN events e ON e.id = d.event_id "
    "WHERE d.endpoint_id = :endpoint_id AND d.status = 'pending' "
    "AND e.object_type = :object_type AND e.object_id = :object_id AND e.id > :event_id "
    "ORDER BY e.id, d.id LIMIT 1"
)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery this worker holds for one attempt (until its lease ends)."""

    id: int
    attempts: int
    endpoint_id: int
    event_id: int
    # The event's writing transaction (0 before tenant_0011): with the id, it names the event in
    # webhook-id even when an in-place restore makes a later event reuse the id.
    tx: int
    type: str
    object_type: str
    object_id: int
    data: dict[str, Any] = field(repr=False)
    created_at: datetime
    url: str
    endpoint_status: str
    secret_ciphertext: bytes = field(repr=False)
    secret_key_id: str
    # The lease's end as the claim set it: the token that says this claim still holds the row.
    leased_until: datetime
    # Whether the endpoint takes the event's type now (its filter may have been narrowed since).
    subscribed: bool


class DeliveryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim(self, delivery_id: int, *, lease_seconds: float) -> Claimed | None:
        """The delivery, now leased to this worker; None if done, not due, held, behind an earlier
        one, or its endpoint is being replayed to."""
        if not await self.session.scalar(_NOT_REPLAYING, {"delivery_id": delivery_id}):
            return None
        row = (await self.session.execute(_CLAIM, {"delivery_id": delivery_id, "lease": lease_seconds})).one_or_none()
        return None if row is None else Claimed(**row._asdict())

    async def succeeded(self, claimed: Claimed, status_code: int) -> bool:
        """Record a 2xx; False if this claim no longer holds the delivery, or its endpoint was
        deleted meanwhile (nothing recorded)."""
        parameters = {
            "delivery_id": claimed.id,
            "endpoint_id": claimed.endpoint_id,
            "leased_until": claimed.leased_until,
            "status_code": status_code,
        }
        return (await self.session.execute(_SUCCEEDED, parameters)).first() is not None

    async def failed(
        self, claimed: Claimed, *, status_code: int | None, error: str | None, delay: float, final: bool
    ) -> tuple[int, datetime] | None:
        """(the endpoint's failures in a row, when the delivery is due again), or None if nothing was
        recorded: the delivery is no longer pending (the endpoint was disabled meanwhile), is gone
        with its deleted endpoint, or this claim no longer holds it."""
        parameters = {
            "delivery_id": claimed.id,
            "endpoint_id": claimed.endpoint_id,
            "leased_until": claimed.leased_until,
            "status_code": status_code,
            "error": error,
            "delay": delay,
            "final": final,
        }
        row = (await self.session.execute(_FAILED, parameters)).one_or_none()
        return None if row is None else (int(row.consecutive_failures), row.next_attempt_at)

    async def fail_one(self, claimed: Claimed, error: str) -> None:
        parameters = {"delivery_id": claimed.id, "leased_until": claimed.leased_until, "error": error}
        await self.session.execute(_FAIL_ONE, parameters)

    async def disable_endpoint(self, endpoint_id: int, reason: str) -> bool:
        """Disable an enabled endpoint and fail what waits for it; False if it was not enabled."""
        disabled = (await self.session.execute(_DISABLE, {"endpoint_id": endpoint_id, "reason": reason})).first()
        if disabled is None:
            return False
        error = f"the endpoint was disabled: {reason}"
        await self.session.execute(_FAIL_PENDING, {"endpoint_id": endpoint_id, "error": error})
        return True

    async def next_for_object(self, claimed: Claimed) -> int | None:
        parameters = {
            "endpoint_id": claimed.endpoint_id,
            "object_type": claimed.object_type,
            "object_id": claimed.object_id,
            "event_id": claimed.event_id,
        }
        value = await self.session.scalar(_NEXT, parameters)
        return None if value is None else int(value)
