"""One ``stripe.StripeClient`` per tenant account: never the module-global ``stripe.api_key``."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from functools import cache
from typing import Any

import anyio
import httpx
import stripe

DEFAULT_TIMEOUT = 30.0


def timeout_option(options: Mapping[str, str]) -> float:
    """``BILLPLANE_PROVIDER_STRIPE_TIMEOUT`` in seconds; a call that takes longer is retried by the sync engine."""
    raw = options.get("timeout")
    if raw is None:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"BILLPLANE_PROVIDER_STRIPE_TIMEOUT must be a number of seconds, not {raw!r}") from None
    if value <= 0:
        raise ValueError("BILLPLANE_PROVIDER_STRIPE_TIMEOUT must be positive")
    return value


@cache
def _tls() -> ssl.SSLContext:
    # Loading the CA bundle costs milliseconds: once per process, not once per adapter or call.
    return ssl.create_default_context(cafile=stripe.ca_bundle_path)


class PerCallHTTPXClient(stripe.HTTPXClient):
    """The SDK's httpx client with one connection per call, so that an adapter needs no closing.

    billplane builds adapters freely and has no lifecycle hook to close them
    (docs/plugins/writing-a-provider.md), so a pooled client would leak sockets. Also sends the
    encoded form as ``content=``: stripe 16 passes it as ``data=``, which httpx 0.28 deprecates.
    """

    def __init__(self, timeout: float) -> None:
        # Not HTTPXClient.__init__: it builds a pooled AsyncClient (and a new TLS context) per adapter.
        stripe.HTTPClient.__init__(self)
        self.httpx = httpx
        self.anyio = anyio
        self._timeout = timeout
        self._client = None
        self._client_async = None

    def _get_request_args_kwargs(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any
    ) -> tuple[list[Any], dict[str, Any]]:
        args, kwargs = super()._get_request_args_kwargs(method, url, headers, post_data)
        data = kwargs.pop("data", None)
        if isinstance(data, str | bytes) and data:
            kwargs["content"] = data
        return list(args), kwargs

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        args, kwargs = self._get_request_args_kwargs(method, url, headers, post_data)
        try:
            async with httpx.AsyncClient(verify=_tls()) as client:
                response = await client.request(*args, **kwargs)
        except Exception as error:
            self._handle_request_error(error)
        return response.content, response.status_code, response.headers

    async def close_async(self) -> None:
        """Nothing is kept open between calls."""


def build_client(secret_key: str, options: Mapping[str, str]) -> stripe.StripeClient:
    """A client for one account. ``api_base`` points it at another server (a local fake in tests)."""
    api_base = options.get("api_base")
    return stripe.StripeClient(
        secret_key,
        base_addresses={"api": api_base} if api_base else None,
        # billplane's sync engine retries with backoff and the same idempotency key; retrying here
        # as well would hold an outbox worker for seconds and hide the failure from its record.
        max_network_retries=0,
        http_client=PerCallHTTPXClient(timeout_option(options)),
    )
