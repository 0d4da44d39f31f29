"""Fixtures of the tenant-layer tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from billplane_tenants import Database


@pytest.fixture
async def single(database_url: str) -> AsyncIterator[Database]:
    """One pooled connection: every read and session of a test runs on the same backend."""
    database = Database(database_url, pool_size=1, max_overflow=0)
    yield database
    await database.dispose()
