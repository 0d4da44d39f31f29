"""An attempt that outlived its lease cannot undo what the attempt after it recorded.

A row's lease runs out while its worker is stalled (waiting for a connection, a slow provider);
another worker claims the row, calls with the same key and finishes it. When the first one comes
back with a failure, recording it must not turn the finished row into a failed or pending one.
"""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from billplane.runtime import Runtime
from billplane.sync.models import OutboxEntry
from billplane.sync.repository import OutboxRepository
from tests.conftest import create_tenant
from tests.platform.billing_seed import insert

Client = AsyncTestClient[Litestar]


async def test_a_late_failure_leaves_a_row_the_next_attempt_finished_done(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "late")
    async with runtime.database.tenant_session(tenant.schema) as session:
        customer = await insert(session, "customers", name="Ada")
        outbox_id = await insert(session, "outbox", kind="customer.ensure", object_id=customer, provider_account_id=1)
        late = await session.get(OutboxEntry, outbox_id)  # as the stalled attempt claimed it
        assert late is not None
        session.expunge(late)
    async with runtime.database.tenant_session(tenant.schema) as session:
        await session.execute(
            text("UPDATE outbox SET status = 'done', done_at = now() WHERE id = :id"), {"id": outbox_id}
        )

    async with runtime.database.tenant_session(tenant.schema) as session:
        outbox = OutboxRepository(session)
        assert await outbox.retry_later(late, delay=5.0, error="read timeout", count=True) is None
        await outbox.fail(late, "invalid API key")

    async with runtime.database.tenant_session(tenant.schema) as session:
        row = (await session.execute(text("SELECT status, attempts, last_error FROM outbox WHERE id = :id"),
                                     {"id": outbox_id})).one()  # fmt: skip
    assert tuple(row) == ("done", 0, None)


async def test_a_late_attempt_leaves_the_lease_and_the_row_of_the_attempt_after_it(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "relet")
    async with runtime.database.tenant_session(tenant.schema) as session:
        customer = await insert(session, "customers", name="Ada")
        outbox_id = await insert(session, "outbox", kind="customer.ensure", object_id=customer, provider_account_id=1)
    async with runtime.database.tenant_session(tenant.schema) as session:
        late = await OutboxRepository(session).claim(outbox_id, lease_seconds=0)  # a lease that ran out
        assert late is not None
    async with runtime.database.tenant_session(tenant.schema) as session:
        current = await OutboxRepository(session).claim(outbox_id, lease_seconds=300)
        assert current is not None

    async with runtime.database.tenant_session(tenant.schema) as session:
        outbox = OutboxRepository(session)
        assert await outbox.retry_later(late, delay=0.0, error="read timeout", count=True) is None
        await outbox.fail(late, "invalid API key")

    async with runtime.database.tenant_session(tenant.schema) as session:
        row = (await session.execute(text("SELECT status, attempts, last_error, next_attempt_at FROM outbox "
                                          "WHERE id = :id"), {"id": outbox_id})).one()  # fmt: skip
    assert tuple(row) == ("pending", 0, None, current.next_attempt_at)
