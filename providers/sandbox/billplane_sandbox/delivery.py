"""How the sandbox delivers the later outcome of a pending payment: a signed POST to billplane.

Only when the operator sets ``BILLPLANE_PROVIDER_SANDBOX_WEBHOOK_URL`` (``options["webhook_url"]``):
without it the sandbox sends nothing. The POST leaves from a background task of the process that
made the charge, after ``pending_delay_seconds``; if that process exits first, the webhook is not
sent (a simulation, not a queue). Retries reuse the event id, so billplane stores it once.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from functools import cache

from billplane_sandbox.events import SignedWebhook

logger = logging.getLogger("billplane_sandbox")

ATTEMPTS = 3
_background: set[asyncio.Task[None]] = set()


@cache
def _tls() -> ssl.SSLContext:
    return ssl.create_default_context()  # once per process: loading CA certificates is slow


def endpoint(webhook_url: str | None, account_id: int) -> str | None:
    """The URL for one account: ``{account_id}`` is filled in, else billplane's inbound path is appended."""
    if not webhook_url:
        return None
    if "{account_id}" in webhook_url:
        return webhook_url.replace("{account_id}", str(account_id))
    return f"{webhook_url.rstrip('/')}/v1/webhooks/sandbox/{account_id}"


async def deliver(url: str, webhook: SignedWebhook, *, retry_delay: float = 0.5) -> bool:
    """POST once, retrying a network error or a 5xx/429 answer; True when the receiver took it."""
    # Imported here: httpx costs ~0.3 s to import, which every billplane process that discovers
    # the sandbox (every CLI command) would pay although almost none of them sends a webhook.
    import httpx  # noqa: PLC0415

    headers = {**webhook.headers, "content-type": "application/json"}
    async with httpx.AsyncClient(timeout=10.0, verify=_tls()) as client:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = await client.post(url, content=webhook.body, headers=headers)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.is_success:
                    return True
                problem = f"HTTP {response.status_code}"
                if response.status_code < 500 and response.status_code != 429:  # noqa: PLR2004 - HTTP classes
                    break
            if attempt < ATTEMPTS:
                await asyncio.sleep(retry_delay * 2 ** (attempt - 1))
    logger.warning("sandbox webhook %s was not delivered to %s (%s)", webhook.headers["webhook-id"], url, problem)
    return False


def in_background(delay: float, url: str, build: Callable[[], SignedWebhook]) -> None:
    """After ``delay`` seconds, build the webhook (signed then, so its timestamp is fresh) and deliver it."""

    async def later() -> None:
        await asyncio.sleep(delay)
        await deliver(url, build())

    task = asyncio.get_running_loop().create_task(later())
    _background.add(task)  # the loop keeps only a weak reference to a task
    task.add_done_callback(_background.discard)


async def wait_for_deliveries() -> None:
    """Wait until every webhook this process has scheduled is sent (or given up): for tests and demos."""
    while pending := set(_background):
        await asyncio.gather(*pending, return_exceptions=True)
