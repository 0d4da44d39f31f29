"""Which action a subscription in each state allows (docs/concepts/subscriptions.md has the table).

One table, checked before anything is written: a refused action is a 409 naming the state and
what it allows, and changes nothing.
"""

from __future__ import annotations

from billplane.api.problems import ConflictError

# action -> states it may start from
ALLOWED: dict[str, frozenset[str]] = {
    "change": frozenset({"trialing", "active", "past_due"}),
    "cancel": frozenset({"trialing", "active", "past_due", "paused", "unpaid", "incomplete"}),
    "pause": frozenset({"trialing", "active", "past_due"}),
    "resume": frozenset({"paused"}),
    # Where a cancellation at the period's end can be scheduled, and so taken back.
    "undo_cancel": frozenset({"trialing", "active", "past_due", "paused", "unpaid"}),
}


def check(action: str, status: str) -> None:
    if status not in ALLOWED[action]:
        allowed = ", ".join(sorted(ALLOWED[action]))
        raise ConflictError(f"a {status} subscription cannot {action.replace('_', ' ')}: only {allowed} ones can")
