"""Fixtures of the provider-sync tests: a fake provider, an AccountSource over it, a worker runtime.

Modules that need other variants (more fake providers, other sync options) define their own
fixtures of the same names, which take precedence.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from litestar import Litestar

from billplane.runtime import Runtime
from tests.platform.heard import sent_statements
from tests.platform.sync_fakes import FAST, FakeState, StaticAccounts, clear_jobs, register_fakes


@pytest.fixture
def fake() -> FakeState:
    return FakeState()


@pytest.fixture
def accounts(app: Litestar, fake: FakeState) -> StaticAccounts:
    """The fake provider and an AccountSource, shared by the app and the test's worker runtime."""
    app_runtime: Runtime = app.state.runtime
    register_fakes(app_runtime.plugins, fake)
    accounts = StaticAccounts(app_runtime.plugins)
    app_runtime.accounts = accounts
    return accounts


@pytest.fixture
async def worker(runtime: Runtime, accounts: StaticAccounts) -> Runtime:
    """A second runtime on the test's loop that runs the worker (the app's lives in the client's thread)."""
    runtime.accounts = accounts
    runtime.sync_options = FAST
    await clear_jobs(runtime)
    return runtime


@pytest.fixture
def statements(app: Litestar) -> Iterator[list[str]]:
    """Every statement the app sends through SQLAlchemy during the test."""
    with sent_statements(app) as seen:
        yield seen
