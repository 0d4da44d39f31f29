"""``POST /v1/test-clocks/{id}/advance`` starts the work at once: its commit notifies the workers,
whose listener queues the clocks job, instead of the advance waiting for the next periodic tick."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import anyio
import pytest
from sqlalchemy import text

from billplane.billing.dunning_tasks import ADVANCE_CLOCKS
from billplane.runtime import Runtime
from billplane.sync.listener import OutboxListener
from tests.conftest import create_tenant
from tests.platform.dunning.helpers import Client
from tests.platform.listening import running_listener
from tests.platform.test_clocks.test_times import URL, _at

T0 = datetime(2032, 5, 1, tzinfo=UTC)


@pytest.fixture
async def listener(worker: Runtime) -> AsyncIterator[OutboxListener]:
    """A worker's listener on the test's loop, with no worker running: what it queues stays queued."""
    async with running_listener(worker) as listening:
        yield listening


async def _clock_jobs(runtime: Runtime) -> int:
    async with runtime.database.transaction() as connection:
        query = text("SELECT count(*) FROM billplane_jobs.procrastinate_jobs WHERE status = 'todo' AND task_name = :t")
        return int((await connection.execute(query, {"t": ADVANCE_CLOCKS})).scalar_one())


async def _clear_clock_jobs(runtime: Runtime) -> None:
    async with runtime.database.transaction() as connection:
        query = "DELETE FROM billplane_jobs.procrastinate_jobs WHERE status = 'todo' AND task_name = :t"
        await connection.execute(text(query), {"t": ADVANCE_CLOCKS})


async def test_an_advance_queues_the_clocks_job_at_once(
    client: Client, admin_headers: dict[str, str], worker: Runtime, listener: OutboxListener
) -> None:
    tenant = await create_tenant(client, admin_headers, "prompt")
    clocks = [
        (await client.post(URL, json={"frozen_time": _at(T0)}, headers=tenant.headers)).json()["id"] for _ in "ab"
    ]
    await _clear_clock_jobs(worker)

    to = {"to": _at(T0.replace(month=6))}
    advanced = await client.post(f"{URL}/{clocks[0]}/advance", json=to, headers=tenant.headers)

    assert advanced.status_code == 202, advanced.text
    with anyio.fail_after(5):  # the periodic tick is up to a minute away; the listener answers in milliseconds
        while not await _clock_jobs(worker):  # noqa: ASYNC110 - polling the database, no event to wait on
            await anyio.sleep(0.02)
    # Another advance while that job waits queues no second one: the job advances every clock.
    assert (await client.post(f"{URL}/{clocks[1]}/advance", json=to, headers=tenant.headers)).status_code == 202
    await anyio.sleep(0.3)
    assert await _clock_jobs(worker) == 1
