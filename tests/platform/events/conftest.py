"""Fixtures of the outbound-webhook tests: an app that allows http to loopback, a receiver, a tenant."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from billplane.events.controller import OPTIONS_STATE_KEY
from billplane.events.options import WebhookOptions
from tests.conftest import CreatedTenant, create_tenant
from tests.platform.events.receiver import Receiver, receiver

LOCAL = WebhookOptions(allow_http_loopback=True)
# Retries in tens of milliseconds: 4 attempts in all.
FAST = WebhookOptions(allow_http_loopback=True, retry_schedule=(0.01, 0.02, 0.04), timeout_seconds=2.0, lease_seconds=5)


@pytest.fixture
def app(app: Litestar) -> Litestar:
    app.state[OPTIONS_STATE_KEY] = LOCAL
    return app


@pytest.fixture
def hooks() -> Iterator[Receiver]:
    with receiver() as state:
        yield state


@pytest.fixture
async def tenant(client: AsyncTestClient[Litestar], admin_headers: dict[str, str]) -> CreatedTenant:
    return await create_tenant(client, admin_headers, "wh")
