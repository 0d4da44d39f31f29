"""Stripe's list endpoints: the ``created`` filter and cursor pagination they share."""

from __future__ import annotations

import operator
from typing import Any

from .errors import invalid
from .objects import list_of

Params = dict[str, Any]
# Stripe's bounds for ``limit`` (and its default when none is sent).
MAX_LIMIT = 100
DEFAULT_LIMIT = 10
_BOUNDS = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}


def created_matches(params: Params, created: int) -> bool:
    """Whether ``created`` passes the ``created`` filter: ``created=<t>`` is that second, and
    ``created[gt|gte|lt|lte]`` bound it (all the given bounds at once)."""
    wanted = params.get("created")
    if wanted is None:
        return True
    if not isinstance(wanted, dict):
        return created == int(wanted)
    return all(_BOUNDS[bound](created, int(value)) for bound, value in wanted.items())


def _limit(params: Params) -> int:
    limit = int(params.get("limit", DEFAULT_LIMIT))
    if not 1 <= limit <= MAX_LIMIT:
        raise invalid(f"limit must be between 1 and {MAX_LIMIT}, got {limit}.", param="limit")
    return limit


def page(found: list[dict[str, Any]], params: Params, url: str) -> dict[str, Any]:
    """One page of ``found`` (newest first, as Stripe lists): the ``limit`` objects after
    ``starting_after``, or the ``limit`` objects just before ``ending_before`` (still newest first).

    ``has_more`` says whether objects remain beyond the page in the direction of travel. A cursor
    that is not in ``found`` gives an empty page.
    """
    after, before = params.get("starting_after"), params.get("ending_before")
    if after and before:
        raise invalid("You may only specify one of these parameters: ending_before, starting_after.")
    limit = _limit(params)
    ids = [item["id"] for item in found]
    if before:
        earlier = found[: ids.index(before)] if before in ids else []
        return list_of(earlier[-limit:], url, has_more=len(earlier) > limit)
    if after:
        found = found[ids.index(after) + 1 :] if after in ids else []
    return list_of(found[:limit], url, has_more=len(found) > limit)
