"""Which pending charges and credits an invoice takes: billplane never pays credit out."""

from __future__ import annotations

from typing import Protocol, TypeVar


class _Amounted(Protocol):
    @property
    def amount(self) -> int: ...


ItemT = TypeVar("ItemT", bound=_Amounted)


def attachable(items: list[ItemT], base: int) -> list[ItemT]:
    """Every pending charge, and the credits (negative amounts) that keep an invoice of ``base``
    from going below zero, in their order: a credit larger than what is due waits, whole, for the
    invoice after."""
    taken = [item for item in items if item.amount >= 0]
    running = base + sum(item.amount for item in taken)
    for credit in (item for item in items if item.amount < 0):
        if running + credit.amount >= 0:
            taken.append(credit)
            running += credit.amount
    return taken
