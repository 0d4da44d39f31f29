"""No configured secret or key reaches any log output, through real requests, jobs and failures.

Every secret this deployment holds is configured or created for real (the settings' keys, a
tenant API key, provider credentials, webhook secrets, the metrics token), the API and a real
worker are driven through the paths that handle them (including failures that echo them), and
ALL captured output is scanned: caplog's records at DEBUG, SQLAlchemy's statements with their
parameters, and billplane's JSON handler.
"""

from __future__ import annotations

import base64
import logging
import secrets

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from billplane.app import create_app
from billplane.events.controller import OPTIONS_STATE_KEY
from billplane.events.options import WebhookOptions
from billplane.runtime import Runtime
from billplane.settings import ObservabilitySettings, SecuritySettings, Settings
from tests.conftest import ADMIN_KEY, SECRET_KEY, create_tenant
from tests.observability.conftest import JsonLog
from tests.platform.events.helpers import drain as drain_webhooks
from tests.platform.events.receiver import receiver
from tests.platform.provider_accounts_fake import FakeProvider, good_body
from tests.platform.sync_fakes import FAST, clear_jobs, drain

Client = AsyncTestClient[Litestar]
ENCRYPTION_KEY = base64.b64encode(secrets.token_bytes(32)).decode()
OLD_ENCRYPTION_KEY = base64.b64encode(secrets.token_bytes(32)).decode()
METRICS_TOKEN = "metrics-token-" + secrets.token_hex(16)
CREDENTIAL = "good_" + secrets.token_hex(12)
REFUSED_CREDENTIAL = "refused_" + secrets.token_hex(12)
PROVIDER_WEBHOOK_SECRET = "whsec_" + secrets.token_hex(16)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    security = SecuritySettings(
        admin_key=ADMIN_KEY,
        secret_key=SECRET_KEY,
        encryption_keys=f"k2:{ENCRYPTION_KEY},k1:{OLD_ENCRYPTION_KEY}",
    )
    return Settings(
        database=settings.database,
        security=security,
        observability=ObservabilitySettings(metrics_token=METRICS_TOKEN),
    )


@pytest.fixture
def app(settings: Settings) -> Litestar:
    app = create_app(settings)
    app.state[OPTIONS_STATE_KEY] = WebhookOptions(allow_http_loopback=True)
    return app


def _leaks(text: str, known: list[str]) -> list[str]:
    return [secret for secret in known if secret in text]


async def test_no_secret_appears_in_any_log_output(
    app: Litestar, client: Client, runtime: Runtime, json_log: JsonLog, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")  # statements and their parameters
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    fake = FakeProvider().install(app)
    fake.install(runtime.plugins)
    tenant = await create_tenant(client, admin, "secrets")

    # Provider account: accepted, refused (the provider echoes the key), broken, checked again.
    body = good_body(credentials={"api_key": CREDENTIAL}, webhook_secret=PROVIDER_WEBHOOK_SECRET)
    account = await client.post("/v1/provider-accounts", json=body, headers=tenant.headers)
    assert account.status_code == 201, account.text
    refused = good_body(credentials={"api_key": REFUSED_CREDENTIAL})
    assert (await client.post("/v1/provider-accounts", json=refused, headers=tenant.headers)).status_code == 422
    fake.broken = True
    assert (
        await client.post(f"/v1/provider-accounts/{account.json()['id']}/check", headers=tenant.headers)
    ).status_code == 200
    fake.broken = False

    # A customer: its sync job runs in a real worker, opens the credentials, and the provider refuses.
    runtime.sync_options = FAST
    await clear_jobs(runtime)
    customer = await client.post("/v1/customers", json={"name": "Ada"}, headers=tenant.headers)
    assert customer.status_code == 201
    await drain(runtime)
    synced = await client.get(f"/v1/customers/{customer.json()['id']}", headers=tenant.headers)
    assert synced.json()["sync_status"] == "failed"

    # An outbound webhook endpoint: its secret is shown once, then signs a delivery that fails.
    with receiver() as hooks:
        hooks.statuses = [500] * 10
        # One delivery, of the endpoint's own creation: customer.created is filtered out.
        body = {"url": hooks.url, "enabled_events": ["webhook_endpoint.*"]}
        endpoint = await client.post("/v1/webhook-endpoints", json=body, headers=tenant.headers)
        assert endpoint.status_code == 201, endpoint.text
        endpoint_secret = endpoint.json()["secret"]
        await client.post("/v1/customers", json={"name": "Grace"}, headers=tenant.headers)
        options = WebhookOptions(allow_http_loopback=True, retry_schedule=(0.01,), timeout_seconds=2.0)
        assert await drain_webhooks(runtime, tenant, options) == ["retry", "disabled"]
        assert hooks.received, "the delivery must have been attempted"

    # Wrong keys of every kind, the metrics token used and refused.
    assert (await client.get("/v1/tenant", headers={"Authorization": f"Bearer {tenant.key}x"})).status_code == 401
    assert (await client.get("/v1/admin/tenants", headers={"Authorization": f"Bearer {SECRET_KEY}"})).status_code == 401
    assert (await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})).status_code == 200
    assert (await client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN_KEY}"})).status_code == 401

    # A careless library that logs what it holds: the net below billplane's own care.
    careless = logging.getLogger("careless.library")
    careless.info("request headers %s", {"Authorization": f"Bearer {tenant.key}", "X-Admin": ADMIN_KEY})
    careless.info(
        "credentials %r webhook %s endpoint %s", {"api_key": CREDENTIAL}, PROVIDER_WEBHOOK_SECRET, endpoint_secret
    )
    try:
        raise RuntimeError(f"failed with {SECRET_KEY} and {ENCRYPTION_KEY} and {METRICS_TOKEN}")  # noqa: TRY301 - an exception to log
    except RuntimeError:
        careless.exception("it broke")

    known = [
        SECRET_KEY,
        ADMIN_KEY,
        ENCRYPTION_KEY,
        OLD_ENCRYPTION_KEY,
        METRICS_TOKEN,
        tenant.key,
        CREDENTIAL,
        REFUSED_CREDENTIAL,
        PROVIDER_WEBHOOK_SECRET,
        endpoint_secret,
    ]
    # The scan means something only if the output saw these paths.
    assert "provider_accounts" in caplog.text
    assert "billplane.perform_outbox" in json_log.text
    assert "[redacted]" in json_log.text
    assert _leaks(json_log.text, known) == []
    assert _leaks(caplog.text, known) == []
    for record in caplog.records:  # what any other handler would format from the records themselves
        assert _leaks(record.getMessage(), known) == []
        assert _leaks(record.exc_text or "", known) == []
