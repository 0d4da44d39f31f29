"""The dunning tests use the real sandbox provider (its plugin is installed) and the real worker."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from billplane.runtime import Runtime
from tests.platform.sync_fakes import as_worker

# The reconciliation job reads every tenant of the database, and earlier tests leave payments and
# refunds waiting (a charge that gave up, a charge or refund pending at the sandbox). They are
# marked as waiting for their tenant, which the job's scans pass over, so that a test's job counts
# its own only.
_PARK_LEFTOVER_PAYMENTS = text(
    """
    DO $$
    DECLARE found record;
    BEGIN
        FOR found IN
            SELECT table_schema, table_name FROM information_schema.columns
            WHERE table_name IN ('payments', 'refunds') AND column_name = 'action_required'
        LOOP
            EXECUTE format(
                'UPDATE %I.%I SET action_required = %L WHERE status = %L AND action_required IS NULL',
                found.table_schema, found.table_name, 'left by an earlier test', 'pending'
            );
        END LOOP;
    END $$
    """
)


@pytest.fixture
async def worker(runtime: Runtime) -> Runtime:
    await as_worker(runtime)
    async with runtime.database.transaction() as connection:
        await connection.execute(_PARK_LEFTOVER_PAYMENTS)
    return runtime
