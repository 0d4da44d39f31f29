"""The dunning tests use the real sandbox provider (its plugin is installed) and the real worker."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from billplane.runtime import Runtime
from tests.platform.sync_fakes import clear_jobs

# The reconciliation job reads every tenant of the database, and earlier tests leave payments
# waiting (a charge that gave up, a charge pending at the sandbox). They are marked as waiting for
# their tenant, which both of the job's scans pass over, so that a test's job counts its own only.
_PARK_LEFTOVER_PAYMENTS = text(
    """
    DO $$
    DECLARE schema_name text;
    BEGIN
        FOR schema_name IN
            SELECT table_schema FROM information_schema.columns
            WHERE table_name = 'payments' AND column_name = 'action_required'
        LOOP
            EXECUTE format(
                'UPDATE %I.payments SET action_required = %L WHERE status = %L AND action_required IS NULL',
                schema_name, 'left by an earlier test', 'pending'
            );
        END LOOP;
    END $$
    """
)


@pytest.fixture
async def worker(runtime: Runtime) -> Runtime:
    await clear_jobs(runtime)
    async with runtime.database.transaction() as connection:
        await connection.execute(_PARK_LEFTOVER_PAYMENTS)
    return runtime
