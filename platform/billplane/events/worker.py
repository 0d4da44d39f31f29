"""What a worker process needs for outbound webhooks (``billplane.sync.worker`` wires it in)."""

from __future__ import annotations

from billplane.events.deliverer import WebhookDeliverer
from billplane.events.jobs import WebhookServices
from billplane.events.listener import DeliveryListener
from billplane.events.options import WebhookOptions, webhook_options
from billplane.events.sweep import DeliverySweeper
from billplane.events.vault import EndpointVault
from billplane.runtime import Runtime
from billplane.sync.listener import asyncpg_dsn


def webhook_services(runtime: Runtime, options: WebhookOptions | None = None) -> WebhookServices:
    options = options or webhook_options()
    vault = EndpointVault.from_settings(runtime.settings)
    return WebhookServices(
        deliverer=WebhookDeliverer(runtime.database, runtime.jobs, vault, options),
        sweeper=DeliverySweeper(runtime.database, runtime.jobs, options),
    )


def delivery_listener(runtime: Runtime, services: WebhookServices) -> DeliveryListener:
    return DeliveryListener(asyncpg_dsn(runtime.settings.database.listening_url), services.sweeper)
