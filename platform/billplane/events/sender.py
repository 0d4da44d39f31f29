"""POSTing one signed webhook: httpx, one time limit for the whole attempt, a bounded read of the
answer, no redirects, no proxies, checked addresses."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

import httpcore
import httpx

from billplane.events.options import WebhookOptions
from billplane.events.urls import ForbiddenURLError, check_address

logger = logging.getLogger("billplane.webhooks")
_MAX_UTF8_BYTES = 4  # per character: the excerpt reads this many bytes per character it keeps


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt got: a status code (any), or an error before a response arrived."""

    status_code: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300  # noqa: PLR2004 - the 2xx range


class CheckedBackend(httpcore.AsyncNetworkBackend):
    """Resolves the host itself, refuses it unless every address is allowed, and connects to the
    address it checked (TLS still verifies the host name): DNS cannot point a delivery at an
    internal service between the check and the connection."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend, *, allow_loopback: bool) -> None:
        self.inner = inner
        self.allow_loopback = allow_loopback

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
            addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in found]
        except (OSError, ValueError) as exc:  # ValueError: UnicodeError of a label IDNA cannot encode
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        if not addresses:
            raise httpcore.ConnectError(f"{host} has no address")
        try:
            for address in addresses:
                check_address(address, allow_loopback=self.allow_loopback)
        except ForbiddenURLError as exc:
            raise httpcore.ConnectError(f"refused to connect to {host}: {exc}") from None
        return await self.inner.connect_tcp(
            str(addresses[0]), port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        del path, timeout, socket_options
        raise httpcore.ConnectError("webhooks are never sent over a unix socket")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


@cache
def _ssl_context() -> Any:
    # Loading the CA bundle costs milliseconds: once per process, not per delivery.
    return httpx.create_ssl_context()


class CheckedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, *, allow_loopback: bool) -> None:
        super().__init__(verify=_ssl_context(), trust_env=False, retries=0)
        # httpx takes no network backend of its own; its pool does. Same pool, checked backend.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=_ssl_context(),
            max_connections=1,
            network_backend=CheckedBackend(httpcore.AnyIOBackend(), allow_loopback=allow_loopback),
        )


async def post(url: str, body: bytes, headers: dict[str, str], options: WebhookOptions) -> Outcome:
    """One attempt, ``options.timeout_seconds`` in all. Never raises: whatever went wrong is the outcome."""
    try:
        # httpx's timeout bounds each read and write alone: a receiver trickling a byte at a time
        # would hold the attempt (and a worker slot) forever. This bounds the whole attempt.
        async with asyncio.timeout(options.timeout_seconds):
            return await _attempt(url, body, headers, options)
    except (TimeoutError, httpx.TimeoutException):
        return Outcome(None, f"timed out after {options.timeout_seconds:g} s")
    except (httpx.HTTPError, httpx.InvalidURL) as exc:  # InvalidURL: an endpoint saved before the URL rules
        return Outcome(None, f"{type(exc).__name__}: {exc}"[:500])
    except Exception as exc:  # nobody foresaw it (a library's bug, say): a failed attempt, not a failed job
        logger.warning("webhook attempt to an endpoint failed unexpectedly: %s", type(exc).__name__, exc_info=True)
        return Outcome(None, f"{type(exc).__name__}: {exc}"[:500])


async def _attempt(url: str, body: bytes, headers: dict[str, str], options: WebhookOptions) -> Outcome:
    # identity: the excerpt is read raw, so no decompression can turn a few bytes into megabytes.
    all_headers = {
        "content-type": "application/json",
        "user-agent": options.user_agent,
        "accept-encoding": "identity",
        **headers,
    }
    transport = CheckedTransport(allow_loopback=options.allow_http_loopback)
    async with (
        httpx.AsyncClient(
            transport=transport, timeout=options.timeout_seconds, follow_redirects=False, trust_env=False
        ) as client,
        client.stream("POST", url, content=body, headers=all_headers) as response,
    ):
        status = response.status_code
        if 200 <= status < 300:  # noqa: PLR2004 - the 2xx range; its body is never read
            return Outcome(status, None)
        redirect = response.headers.get("location")
        if redirect is not None:
            return Outcome(status, f"redirects are not followed (Location: {redirect[:200]})")
        excerpt = await _excerpt(response, options.error_excerpt)
    return Outcome(status, f"HTTP {status}: {excerpt}" if excerpt else None)


async def _excerpt(response: httpx.Response, characters: int) -> str:
    """The body's first ``characters`` characters; never reads much more (a body may be endless)."""
    wanted = characters * _MAX_UTF8_BYTES
    read = bytearray()
    if wanted > 0:
        async for chunk in response.aiter_raw():
            read += chunk
            if len(read) >= wanted:
                break
    return bytes(read[:wanted]).decode("utf-8", errors="replace")[:characters]
