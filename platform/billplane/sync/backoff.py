"""Retry delays: exponential backoff with jitter, never sooner than the provider asked."""

from __future__ import annotations

import random
from collections.abc import Callable


def retry_delay(
    attempts: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    uniform: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before attempt ``attempts + 1``.

    "Equal jitter": half the exponential step is fixed and half random, so retries of many rows
    that failed together (a provider outage) spread out but never come back immediately. A
    provider's ``Retry-After`` is a floor.
    """
    step = min(cap, base * 2.0 ** max(attempts - 1, 0))
    delay = step / 2 + uniform() * step / 2
    if retry_after is not None and retry_after > delay:
        delay = retry_after
    return delay
