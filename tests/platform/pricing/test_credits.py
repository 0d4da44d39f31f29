"""Which pending items an invoice takes (hypothesis): never below zero, no credit lost or counted
twice, a credit left waiting only when the invoice is at zero."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from billplane.pricing.credits import attachable


@dataclass(frozen=True)
class Item:
    n: int  # distinct items with equal amounts stay distinct
    amount: int


items = st.lists(st.integers(min_value=-(10**6), max_value=10**6), max_size=8).map(
    lambda amounts: [Item(n, amount) for n, amount in enumerate(amounts)]
)
bases = st.integers(min_value=0, max_value=10**6)


@given(items, bases)
def test_the_invoice_never_goes_below_zero_and_every_charge_is_taken(pending: list[Item], base: int) -> None:
    attached = attachable(pending, base)
    total = base + sum(item.amount for item in attached.whole) + attached.applied
    assert total >= 0
    assert [item for item in pending if item.amount >= 0] == [item for item in attached.whole if item.amount >= 0]


@given(items, bases)
def test_a_credit_waits_only_when_the_invoice_is_at_zero(pending: list[Item], base: int) -> None:
    attached = attachable(pending, base)
    total = base + sum(item.amount for item in attached.whole) + attached.applied
    waiting = [item for item in pending if item not in attached.whole]
    if waiting:  # the credit taken in part is among them: its rest waits
        assert total == 0
    if attached.part is not None:
        assert attached.part in waiting
        assert attached.part.amount < attached.applied < 0  # a part, neither nothing nor the whole


@given(items, bases)
def test_credits_are_taken_in_their_order(pending: list[Item], base: int) -> None:
    attached = attachable(pending, base)
    in_order = [item for item in pending if item.amount < 0]
    taken = [item for item in attached.whole if item.amount < 0]
    assert taken == in_order[: len(taken)]  # a prefix: none skipped for a later, smaller one
    if attached.part is not None:
        assert attached.part == in_order[len(taken)]


@given(items, bases, st.integers(min_value=0, max_value=2 * 10**6))
def test_a_charge_waits_only_when_it_would_take_the_invoice_over_the_limit(
    pending: list[Item], base: int, limit: int
) -> None:
    attached = attachable(pending, base, limit)
    charged = base + sum(item.amount for item in attached.whole if item.amount >= 0)
    assert charged <= max(base, limit)  # charges never take it over (its own lines may be, already)
    waiting = [item for item in pending if item.amount >= 0 and item not in attached.whole]
    assert all(charged + item.amount > limit for item in waiting)  # none that would have fit
    total = charged + sum(item.amount for item in attached.whole if item.amount < 0) + attached.applied
    assert total >= 0
