"""A first attempt whose answer is lost at the fake Stripe: Stripe makes the object after the
client has given up, and the row's retry comes a second later."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from billplane.runtime import Runtime
from billplane.sync.options import SyncOptions
from billplane.sync.sweep import Sweeper
from billplane.sync.worker import run_worker
from tests.providers.stripe.fake_stripe.server import FakeStripe


def stripe_slow_once(worker: Runtime, fake_stripe: FakeStripe, monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    """The next call to ``path`` is answered after the client's timeout (0.5 s); a retry waits 1 s.
    Call it before the worker builds an adapter: the timeout is read then."""
    worker.sync_options = SyncOptions(base_delay=1.0, max_delay=1.0, not_ready_delay=0.0, max_attempts=8)
    monkeypatch.setenv("BILLPLANE_PROVIDER_STRIPE_TIMEOUT", "0.5")
    fake_stripe.delay_next(1.2, path=path)


async def first_attempt(worker: Runtime, made: dict[str, Any]) -> None:
    """Run the queued rows' first attempts, then wait until the fake Stripe has made what they
    asked for (``made``, one of its stores, is filled: it answers in a thread of its own). The
    sweep defers the rows' jobs: a create rings none itself, and a request's doorbell may not have
    yet. Their retries are not due before the test goes on."""
    await Sweeper(worker.database, worker.jobs, worker.sync_options, grace_seconds=0).sweep()
    await run_worker(worker, wait=False)
    with anyio.fail_after(5):
        while not made:  # noqa: ASYNC110 - nothing of this task's can hear the fake's thread
            await anyio.sleep(0.05)
