"""Every periodic read across tenant schemas stays within its lock budget.

Each read (``UNION ALL`` of one SELECT per schema) holds a lock on every table it names, and on
every index of those tables, until its transaction ends; all sessions share one lock table
(``max_locks_per_transaction`` x ``max_connections`` slots, 6,400 by default). Reads of too many
schemas at once ran out of shared memory and failed other sessions' queries. Here each read runs
over one real tenant schema while its locks are counted; a read of a whole batch takes that many
per schema.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import event

from billplane.db import tenant_scan
from billplane.events.worker import webhook_services
from billplane.runtime import Runtime
from billplane.sync.worker import worker_services
from tests.conftest import create_tenant

# The whole lock table of a server with PostgreSQL's defaults; a read may take a sixth of it.
DEFAULT_LOCK_TABLE = 64 * 100
_LOCKS_IN_SCHEMA = (
    "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE l.pid = pg_backend_pid() AND n.nspname = %s"
)


def test_the_budget_leaves_the_lock_table_to_everyone_else() -> None:
    assert tenant_scan.LOCK_BUDGET * 6 <= DEFAULT_LOCK_TABLE


async def test_every_periodic_read_of_a_batch_stays_within_the_lock_budget(
    client: AsyncTestClient[Litestar], admin_headers: dict[str, str], worker: Runtime
) -> None:
    schema = (await create_tenant(client, admin_headers, "locks")).schema
    seen: dict[str, int] = {}
    reading = [""]

    def count(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if not statement.lstrip().startswith("(SELECT ") or schema not in statement:
            return  # not a read across tenant schemas
        probe = conn.connection.dbapi_connection.cursor()
        probe.execute(_LOCKS_IN_SCHEMA.replace("%s", "$1"), (schema,))
        held = int(probe.fetchone()[0])
        seen[reading[0]] = max(seen.get(reading[0], 0), held)

    services, webhooks = worker_services(worker), webhook_services(worker)
    reads: dict[str, tuple[Callable[[], Awaitable[object]], int]] = {
        "billing run": (services.billing.run, tenant_scan.BATCH),
        "dunning run": (services.dunning.run, tenant_scan.BATCH),
        "payment reconciliation": (services.reconciliation.run, tenant_scan.BATCH),
        "incomplete expiry": (services.expiry.expire, tenant_scan.BATCH),
        "test clocks": (services.clocks.run, tenant_scan.BATCH),
        "outbox sweep": (services.sweeper.sweep, worker.sync_options.sweep_batch),
        "webhook sweep": (webhooks.sweeper.sweep, webhooks.sweeper.options.sweep_batch),
    }
    engine = worker.database.engine.sync_engine
    event.listen(engine, "after_cursor_execute", count)
    try:
        for name, (read, _) in reads.items():
            reading[0] = name
            await read()
    finally:
        event.remove(engine, "after_cursor_execute", count)

    assert set(seen) == set(reads), f"reads not seen: {set(reads) - set(seen)}"
    for name, (_, batch) in reads.items():
        assert seen[name] > 0, name
        assert seen[name] * batch <= tenant_scan.LOCK_BUDGET, (
            f"{name}: {seen[name]} locks per schema x {batch} schemas a read exceeds {tenant_scan.LOCK_BUDGET}"
        )
