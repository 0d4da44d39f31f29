"""What the sandbox remembers: every charge it made, so that ``find_payment`` answers from fact.

The rest of the sandbox derives its answers from the request alone; a lookup cannot, since the
question is whether a request arrived at all. Each charge is kept under (account, billplane payment
id) with its idempotency key, in the memory of the process that made it: the embedded default
(``billplane dev`` / ``make run``) runs the worker in the API's process, so every lookup sees
every charge. Where several processes call the sandbox, one does not see another's charges and
answers "no such charge" for them, except for ``pm_sandbox_answer_lost``, whose charge any process
can derive (docs/plugins/sandbox.md says so).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from billplane.plugins import ChargeResult
from billplane_sandbox.payment_methods import SandboxPaymentMethod


@dataclass(frozen=True, slots=True)
class Charge:
    idempotency_key: str
    result: ChargeResult
    method: SandboxPaymentMethod
    at: float  # time.time() when it was made


# A long-lived demo process must not grow without end: the oldest payments are forgotten first
# (a lookup comes minutes after a charge, never after this many others).
MAX_PAYMENTS = 100_000


@dataclass
class Ledger:
    _charges: dict[tuple[int, int], list[Charge]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, account_id: int, payment_id: int, charge: Charge) -> None:
        with self._lock:
            made = self._charges.setdefault((account_id, payment_id), [])
            if all(old.idempotency_key != charge.idempotency_key for old in made):  # a retry: one charge
                made.append(charge)
            while len(self._charges) > MAX_PAYMENTS:
                del self._charges[next(iter(self._charges))]

    def made(self, account_id: int, provider_payment_id: str) -> Charge | None:
        """The charge this process made under this provider id, if it remembers one."""
        with self._lock:
            for (account, _), made in self._charges.items():
                for charge in made:
                    if account == account_id and charge.result.provider_payment_id == provider_payment_id:
                        return charge
        return None

    def find(self, account_id: int, payment_id: int, idempotency_key: str, since: float) -> Charge | None:
        """The charge made with this key, else the payment's latest one made since ``since``."""
        with self._lock:
            made = [charge for charge in self._charges.get((account_id, payment_id), []) if charge.at >= since]
        exact = [charge for charge in made if charge.idempotency_key == idempotency_key]
        chosen = exact or made
        return chosen[-1] if chosen else None

    def clear(self) -> None:
        with self._lock:
            self._charges.clear()


LEDGER = Ledger()


def now() -> float:
    return time.time()
