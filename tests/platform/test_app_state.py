"""An app's state is what ``renew_state`` gives it: the test suite keeps one app per settings and
renews its state before each test, so nothing of one test may reach the next through the app."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from billplane.app import SERVICES_STATE_KEY, create_app, renew_state
from billplane.events.controller import OPTIONS_STATE_KEY
from billplane.events.options import WebhookOptions
from billplane.settings import Settings
from tests.other_process import listening_client


async def test_a_renewed_app_keeps_nothing_of_its_old_state_and_serves_with_the_new(settings: Settings) -> None:
    app = create_app(settings)
    async with AsyncTestClient(app) as client:
        assert (await client.get("/health")).status_code == 200
    old = app.state[SERVICES_STATE_KEY]
    app.state[OPTIONS_STATE_KEY] = WebhookOptions(allow_http_loopback=True)

    renew_state(app, settings)

    new = app.state[SERVICES_STATE_KEY]
    assert new is not old
    assert (new.runtime, new.key_cache) == (app.state.runtime, app.state.key_cache)
    assert app.state.runtime is not old.runtime
    assert app.state.key_cache is not old.key_cache
    assert app.state.connection_gate is not None
    assert OPTIONS_STATE_KEY not in app.state
    # The startup hook started the new services (their listener hears its own ping) ...
    async with listening_client(app) as client:
        assert new.changes.listening
        assert (await client.get("/health")).status_code == 200
    assert not new.changes.listening  # ... and the shutdown hook stopped them
