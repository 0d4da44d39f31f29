"""The dunning tests use the real sandbox provider (its plugin is installed) and the real worker."""

from __future__ import annotations

import pytest

from billplane.runtime import Runtime
from tests.platform.sync_fakes import clear_jobs


@pytest.fixture
async def worker(runtime: Runtime) -> Runtime:
    await clear_jobs(runtime)
    return runtime
