"""Tunables of provider sync (retries, leases, sweep), with production defaults."""

from __future__ import annotations

from dataclasses import dataclass

from billplane.db import tenant_scan


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncOptions:
    # A claimed row is not attempted again for this long: the bound on how late a row is retried
    # after its worker died mid-call. Longer than any provider call (adapters time out sooner).
    lease_seconds: float = 120.0
    # Retryable failures back off exponentially from base_delay up to max_delay (with jitter);
    # after max_attempts the row fails and the object shows the last error.
    max_attempts: int = 8
    base_delay: float = 2.0
    max_delay: float = 3600.0
    # How soon to look again at a row waiting for another (a subscription for its customer).
    not_ready_delay: float = 5.0
    # The sweep reads due rows of this many tenant schemas per query.
    sweep_batch: int = tenant_scan.BATCH  # its lock budget
    # Jobs one worker runs at once.
    concurrency: int = 4
