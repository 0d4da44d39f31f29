"""What the per-tenant rate limit adds to each tenant request, measured in process.

Per call, median of ``--repeat`` runs of ``--calls`` calls each:

- ``enforce``: ``RateLimits.enforce`` as ``authenticate`` calls it (the bucket arithmetic and the
  decision put in the request's scope), over 1 tenant and over 10,000 tenants in turn (a table
  of 10,000 buckets);
- ``enforce, unlimited``: the same with the limit off (0 per second), the floor;
- ``headers``: the ``before_send`` hook adding the ``RateLimit-*`` fields to a response start;
- a reference measured in the same run: the peppered HMAC-SHA256 of the API key that every
  tenant request already computes to look its key up in the cache (``key_digest``).

No database and no HTTP: the limiter has neither, so these are its whole cost. The reference row
makes runs on a busy machine comparable; a whole request is in docs/performance.md ("The tenant
API over HTTP").

    uv run python bench/ratelimit_overhead.py [--calls 200000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

from billplane.ratelimit import RateLimits, add_rate_limit_headers
from billplane.settings import RateLimitSettings
from billplane_tenants import KeyPrincipal
from billplane_tenants.keys import key_digest, new_key

REFERENCE = "reference: the API key's HMAC digest"
NEVER_REFUSED = RateLimitSettings(per_second=1_000_000_000, burst=1_000_000_000)


def principals(count: int, limit: tuple[int, int] | None = None) -> list[KeyPrincipal]:
    return [
        KeyPrincipal(key_id=n, tenant_id=n, slug=f"t{n}", schema_name=f"tenant_t{n}", status="active", rate_limit=limit)
        for n in range(1, count + 1)
    ]


def time_enforce(limits: RateLimits, who: list[KeyPrincipal], calls: int) -> float:
    """Nanoseconds per call."""
    scopes: list[Any] = [{"state": {}} for _ in range(1024)]
    tenants = len(who)
    started = time.perf_counter_ns()
    for n in range(calls):
        limits.enforce(scopes[n & 1023], who[n % tenants])
    return (time.perf_counter_ns() - started) / calls


async def time_headers(calls: int) -> float:
    limits = RateLimits(NEVER_REFUSED)
    scope: Any = {"state": {}}
    limits.enforce(scope, principals(1)[0])
    started = time.perf_counter_ns()
    for _ in range(calls):
        message: Any = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"json")]}
        await add_rate_limit_headers(message, scope)
    return (time.perf_counter_ns() - started) / calls


def time_key_digest(calls: int) -> float:
    pepper, key = b"p" * 32, new_key()
    started = time.perf_counter_ns()
    for _ in range(calls):
        key_digest(pepper, key)
    return (time.perf_counter_ns() - started) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    cases: dict[str, Callable[[], float]] = {
        "enforce, 1 tenant": lambda: time_enforce(RateLimits(NEVER_REFUSED), principals(1), args.calls),
        "enforce, 10,000 tenants": lambda: time_enforce(RateLimits(NEVER_REFUSED), principals(10_000), args.calls),
        "enforce, unlimited": lambda: time_enforce(RateLimits(NEVER_REFUSED), principals(1, (0, 1)), args.calls),
        "headers (before_send)": lambda: asyncio.run(time_headers(args.calls)),
        REFERENCE: lambda: time_key_digest(args.calls),
    }
    # Rounds interleave the cases, so a change in the machine's load hits every case alike; the
    # ratio to the reference is taken within each round.
    runs: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.repeat):
        for name, case in cases.items():
            runs[name].append(case())
    reference = runs[REFERENCE]
    print("| case | ns per call (median) | min | max | x the key's HMAC (median of rounds) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, times in runs.items():
        ratio = statistics.median(t / r for t, r in zip(times, reference, strict=True))
        print(f"| {name} | {statistics.median(times):,.0f} | {min(times):,.0f} | {max(times):,.0f} | {ratio:.2f} |")
    print(f"\n`uv run python bench/ratelimit_overhead.py --calls {args.calls} --repeat {args.repeat}`")


if __name__ == "__main__":
    main()
