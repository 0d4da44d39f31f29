"""The test clock tests use the real sandbox provider (its plugin is installed) and the real worker."""

from __future__ import annotations

import pytest

from billplane.runtime import Runtime
from tests.platform.sync_fakes import as_worker


@pytest.fixture
async def worker(runtime: Runtime) -> Runtime:
    return await as_worker(runtime)
