"""The dunning tests use the real sandbox provider (its plugin is installed) and the real worker."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from billplane.runtime import Runtime
from tests.platform.sync_fakes import as_worker

# The reconciliation job reads every active tenant of the database, and earlier tests leave payments
# and refunds waiting (a charge that gave up, a charge or refund pending at the sandbox). A test's
# tenants are suspended once it ends (tests/conftest.py), but those a module's fixture made stay
# active: their waiting payments and refunds are marked as waiting for their tenant, which the
# job's scans pass over, so that a test's job counts its own only. (Read from the catalogs, for the
# active tenants only: information_schema over every schema of a whole run took a second a test.)
_PARK_LEFTOVER_PAYMENTS = text(
    """
    DO $$
    DECLARE found record;
    BEGIN
        FOR found IN
            SELECT n.nspname AS table_schema, c.relname AS table_name
            FROM control.tenants t
            JOIN pg_namespace n ON n.nspname = t.schema_name
            JOIN pg_class c ON c.relnamespace = n.oid AND c.relname IN ('payments', 'refunds')
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'action_required' AND NOT a.attisdropped
            WHERE t.status = 'active'
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
