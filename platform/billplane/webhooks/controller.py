"""/v1/webhooks/{provider}/{account_id}: where a tenant's provider account sends its events."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post
from litestar.params import FromPath

from billplane.api.auth import runtime_of
from billplane.webhooks.schemas import WebhookReceipt
from billplane.webhooks.service import WebhookReceiver


class WebhookController(Controller):
    path = "/v1/webhooks"
    tags = ["webhooks"]
    security = []  # the provider's signature is the authentication, not an API key

    @post("/{provider:str}/{account_id:int}", operation_id="receiveProviderWebhook", status_code=200)
    async def receive_webhook(
        self, request: Request[Any, Any, Any], provider: FromPath[str], account_id: FromPath[int]
    ) -> WebhookReceipt:
        """Receive a provider's webhook delivery for one provider account.

        Configure this URL at the provider for the account. The body must verify with the
        account's webhook secret (400 otherwise, nothing stored); an unknown account, or one of
        another provider, is 404; bodies over 1 MiB are 413. Each event is stored once per
        account: a repeated delivery answers 200 with `duplicates` and stores nothing new. Events
        are applied in the background.
        """
        runtime = runtime_of(request)
        receiver = WebhookReceiver(runtime.database, runtime.accounts, runtime.jobs)
        account = await receiver.account(provider, account_id)  # 404 before reading a body at all
        headers = {name.lower(): value for name, value in request.headers.items()}
        return await receiver.receive(account, headers, await request.body())
