"""What the sandbox remembers: every charge and refund it made, so that ``find_payment`` and
``find_refund`` answer from fact.

The rest of the sandbox derives its answers from the request alone; a lookup cannot, since the
question is whether a request arrived at all. Each charge is kept under (account, billplane payment
id), each refund under (account, billplane refund id), with its idempotency key, in the memory of
the process that made it: the embedded default (``billplane dev`` / ``make run``) runs the worker
in the API's process, so every lookup sees every charge and refund. Where several processes call
the sandbox, one does not see another's and answers "no such charge" (or refund) for them, except
for ``pm_sandbox_answer_lost`` (its charges) and ``pm_sandbox_refund_answer_lost`` (its payments'
refunds), which any process can derive (docs/plugins/sandbox.md says so).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from billplane.plugins import ChargeResult, RefundResult
from billplane_sandbox.payment_methods import SandboxPaymentMethod


@dataclass(frozen=True, slots=True)
class Charge:
    idempotency_key: str
    result: ChargeResult
    method: SandboxPaymentMethod
    at: float  # time.time() when it was made


@dataclass(frozen=True, slots=True)
class Refund:
    idempotency_key: str
    result: RefundResult
    at: float  # time.time() when it was made
    provider_payment_id: str  # the payment refunded: refund ids of several tenants on one account overlap


class _Made(Protocol):
    @property
    def idempotency_key(self) -> str: ...

    @property
    def at(self) -> float: ...


Made = TypeVar("Made", bound=_Made)

# A long-lived demo process must not grow without end: the oldest payments (refunds) are forgotten
# first (a lookup comes minutes after a charge, never after this many others).
MAX_PAYMENTS = 100_000


@dataclass
class Ledger(Generic[Made]):
    """What was made, by (account, billplane's id of the payment or refund)."""

    _made: dict[tuple[int, int], list[Made]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, account_id: int, object_id: int, entry: Made) -> None:
        with self._lock:
            made = self._made.setdefault((account_id, object_id), [])
            if all(old.idempotency_key != entry.idempotency_key for old in made):  # a retry: one charge (refund)
                made.append(entry)
            while len(self._made) > MAX_PAYMENTS:
                del self._made[next(iter(self._made))]

    def find(self, account_id: int, object_id: int, idempotency_key: str, since: float) -> Made | None:
        """The one made with this key, else the payment's (refund's) latest one made since ``since``."""
        with self._lock:
            made = [entry for entry in self._made.get((account_id, object_id), []) if entry.at >= since]
        exact = [entry for entry in made if entry.idempotency_key == idempotency_key]
        chosen = exact or made
        return chosen[-1] if chosen else None

    def clear(self) -> None:
        with self._lock:
            self._made.clear()


class ChargeLedger(Ledger[Charge]):
    def made(self, account_id: int, provider_payment_id: str) -> Charge | None:
        """The charge this process made under this provider id, if it remembers one."""
        with self._lock:
            for (account, _), made in self._made.items():
                for charge in made:
                    if account == account_id and charge.result.provider_payment_id == provider_payment_id:
                        return charge
        return None


LEDGER = ChargeLedger()
REFUNDS: Ledger[Refund] = Ledger()


def now() -> float:
    return time.time()
