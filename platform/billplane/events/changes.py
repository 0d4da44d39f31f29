"""Whether a change is one the API shows: the rule every ``*.updated`` event follows."""

from __future__ import annotations

from typing import TypeVar

import msgspec

View = TypeVar("View", bound=msgspec.Struct)


def changed(before: View, after: View, *, ignoring: tuple[str, ...] = ()) -> bool:
    """Whether the object as the API shows it changed from ``before`` to ``after``. ``updated_at``
    moving alone is no change (it moves with every write, a provider's watermark included), nor
    are the fields ``ignoring`` names."""
    same = {name: getattr(after, name) for name in ("updated_at", *ignoring)}
    return msgspec.structs.replace(before, **same) != after
