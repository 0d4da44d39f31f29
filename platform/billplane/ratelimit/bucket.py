"""Per-tenant token buckets, kept in this process's memory.

Each tenant's bucket is one float (GCRA: the time at which its bucket would be full again), so
admitting a request is a dict lookup and a little arithmetic: no database, no lock (the event
loop runs one admission at a time). A bucket that has refilled is the same as no bucket, which is
what bounds the table: idle tenants are dropped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

# Float arithmetic on times must not turn an exact "1 second" into a 2 s Retry-After.
_EPSILON = 1e-9
MAX_BUCKETS = 10_000


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs a few microseconds a request
class Decision:
    allowed: bool
    limit: int  # the burst: how many requests a full bucket admits at once
    remaining: int  # requests admitted right now without waiting
    reset_seconds: int  # until the bucket is full again
    retry_after_seconds: int  # until the next request is admitted (0 when this one was)


class TenantLimiter:
    """GCRA (the token bucket's arithmetic twin) per tenant id; ``clock`` is injectable for tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_buckets: int = MAX_BUCKETS) -> None:
        self.clock = clock
        self._max_buckets = max_buckets
        # tenant id -> the theoretical arrival time: when the bucket is full again.
        self._full_at: dict[int, float] = {}

    def __len__(self) -> int:
        return len(self._full_at)

    def admit(self, tenant_id: int, per_second: int, burst: int) -> Decision:
        """Take one request from ``tenant_id``'s bucket, or say how long until one is admitted.

        ``per_second`` requests a second on average, up to ``burst`` at once; both at least 1
        (an unlimited tenant never gets here).
        """
        # Inline arithmetic, no helper calls: it runs on every tenant request.
        now = self.clock()
        interval = 1.0 / per_second
        full_at = self._full_at.get(tenant_id, now)
        full_at = max(full_at, now)
        next_full_at = full_at + interval
        admitted_from = next_full_at - burst * interval  # burst * interval: an empty bucket's refill
        if admitted_from > now + _EPSILON:
            # The bucket is left untouched: a refused request costs the tenant nothing.
            return Decision(
                allowed=False,
                limit=burst,
                remaining=0,
                reset_seconds=math.ceil(full_at - now - _EPSILON),
                retry_after_seconds=max(1, math.ceil(admitted_from - now - _EPSILON)),
            )
        if tenant_id not in self._full_at and len(self._full_at) >= self._max_buckets:
            self._forget_idle(now)
        self._full_at[tenant_id] = next_full_at
        # int() floors here: the difference is never below -_EPSILON.
        remaining = int((now - admitted_from) * per_second + _EPSILON)
        return Decision(
            allowed=True,
            limit=burst,
            remaining=remaining,
            reset_seconds=math.ceil(next_full_at - now - _EPSILON),
            retry_after_seconds=0,
        )

    def _forget_idle(self, now: float) -> None:
        idle = [tenant_id for tenant_id, full_at in self._full_at.items() if full_at <= now]
        for tenant_id in idle:
            del self._full_at[tenant_id]
        if len(self._full_at) >= self._max_buckets:
            # Every bucket is busy: more active tenants than the bound. Starting them all full
            # again is generous but bounded; refusing a new tenant outright would be worse.
            self._full_at.clear()
