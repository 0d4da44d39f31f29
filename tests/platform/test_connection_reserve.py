"""Tenant requests leave one pooled connection for the control-plane reads some of them make.

A request holds its connection for its whole transaction; a few read the control plane on another
(a provider account's credentials when a payment is synced with its provider, say). When every
connection was held by such requests, each waited for one more until the pool's timeout: 500s
after 30 s. The gate that admits tenant requests is one smaller than the pool.
"""

from __future__ import annotations

import pytest

from billplane.settings import DatabaseSettings, SecuritySettings, Settings
from tests.conftest import ADMIN_KEY, SECRET_KEY, create_tenant
from tests.platform.concurrently import in_thread
from tests.platform.invoices.helpers import Client
from tests.platform.invoices.idempotency_samples import INVOICE_SAMPLES


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database=DatabaseSettings(url=database_url, pool_size=2, max_overflow=0),
        security=SecuritySettings(admin_key=ADMIN_KEY, secret_key=SECRET_KEY),
    )


async def test_requests_that_read_the_control_plane_too_do_not_starve_a_small_pool(
    client: Client, admin_headers: dict[str, str]
) -> None:
    sync = INVOICE_SAMPLES["/v1/payments/{payment_id:int}/sync"]
    tenants = [await create_tenant(client, admin_headers, "reserve") for _ in range(2)]
    paths = [(await sync(client, tenant))[0] for tenant in tenants]

    running = [
        in_thread(client.post(path, headers=tenant.headers)) for path, tenant in zip(paths, tenants, strict=True)
    ]
    answers = [await answer for answer in running]

    assert [answer.status_code for answer in answers] == [200, 200], [answer.text for answer in answers]
