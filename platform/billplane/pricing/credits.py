"""Which pending charges and credits an invoice takes: billplane never pays credit out, and an
invoice never goes below zero, so a credit larger than what is left to pay is taken in part. Nor
does an invoice go above what any invoice may hold: a charge that would take it there waits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar


class _Amounted(Protocol):
    @property
    def amount(self) -> int: ...


ItemT = TypeVar("ItemT", bound=_Amounted)


@dataclass(frozen=True, slots=True)
class Attached(Generic[ItemT]):
    """What an invoice takes of the pending items: ``whole`` ones, in order (the charges, then the
    credits that fit), and at most one credit in ``part``: ``applied`` of it (negative) brings the
    invoice to zero, and the rest of it waits for the invoice after."""

    whole: list[ItemT] = field(default_factory=list)
    part: ItemT | None = None
    applied: int = 0


def attachable(items: list[ItemT], base: int, limit: int | None = None) -> Attached[ItemT]:
    """The pending ``items`` an invoice of ``base`` takes: the charges in their order, each that
    keeps it within ``limit`` (None: every one; the others wait for an invoice with room for them),
    then the credits in their order while the invoice stays at zero or more, the first that does
    not fit taken in part."""
    whole: list[ItemT] = []
    running = base
    for charge in (item for item in items if item.amount >= 0):
        if limit is None or running + charge.amount <= limit:
            whole.append(charge)
            running += charge.amount
    for credit in (item for item in items if item.amount < 0):
        if running + credit.amount < 0:
            return Attached(whole, credit, -running) if running > 0 else Attached(whole)
        whole.append(credit)
        running += credit.amount
    return Attached(whole)
