"""The invoice state machine: which action moves an invoice from which states, and to which.

draft -> open (finalize) -> paid / void / uncollectible. An uncollectible invoice may still be paid
(the customer paid after all) or voided; paid and void are final. A refused action is a 409 that
names the invoice's state, so the tenant knows why.
"""

from __future__ import annotations

from typing import Literal

from billplane.api.problems import ConflictError

Action = Literal["finalize", "pay", "void", "mark_uncollectible"]

# action -> (the states it starts from, the state it ends in)
TRANSITIONS: dict[Action, tuple[frozenset[str], str]] = {
    "finalize": (frozenset({"draft"}), "open"),
    "pay": (frozenset({"open", "uncollectible"}), "paid"),
    "void": (frozenset({"open", "uncollectible"}), "void"),
    "mark_uncollectible": (frozenset({"open"}), "uncollectible"),
}

_WHY = {
    "draft": "finalize it first",
    "paid": "a paid invoice is final",
    "void": "a void invoice is final",
}


def target(action: Action, status: str) -> str:
    """The state ``action`` moves an invoice in ``status`` to; ConflictError (409) if it may not."""
    sources, result = TRANSITIONS[action]
    if status not in sources:
        why = _WHY.get(status, f"it must be {' or '.join(sorted(sources))}")
        raise ConflictError(f"cannot {action.replace('_', ' ')} an invoice that is {status}: {why}")
    return result
