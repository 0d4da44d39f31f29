"""Which webhook URLs billplane will POST to: the SSRF rules.

An endpoint URL must be ``https`` to a public address. With ``allow_http_loopback`` (local
development, tests) a loopback address may also be used, over ``http`` or ``https``. The rules run
twice: on the URL when an endpoint is created or changed (``check_url``: literal addresses and
well-known local names), and on every address the host name resolves to right before each
delivery connects (``check_address``; billplane connects to the address it checked, so a name
that resolves differently the second time cannot slip through).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048
_LOCAL_NAMES = ("localhost", "localhost.localdomain")
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class ForbiddenURLError(ValueError):
    """The URL or address is not one billplane sends webhooks to; the message says why."""


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _is_loopback(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def check_address(address: IPAddress, *, allow_loopback: bool) -> None:
    """Refuse every address that is not public (private, link-local, loopback, reserved, ...)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if _is_loopback(address):
        if allow_loopback:
            return
        raise ForbiddenURLError("loopback addresses are not allowed")
    if not address.is_global or address.is_multicast:
        raise ForbiddenURLError(f"{address} is not a public address (private, link-local or reserved)")


def check_url(url: str, *, allow_http_loopback: bool) -> str:
    """The URL if billplane may send webhooks to it, else ``ForbiddenURLError`` with the reason."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ForbiddenURLError(f"not a URL: {exc}") from None
    host = (parts.hostname or "").rstrip(".")
    if parts.scheme not in {"http", "https"} or not host:
        raise ForbiddenURLError("must be an absolute https:// URL")
    if parts.username is not None or parts.password is not None:
        raise ForbiddenURLError("must not contain credentials (user:password@)")
    if parts.fragment:
        raise ForbiddenURLError("must not contain a fragment (#...)")
    if port == 0:
        raise ForbiddenURLError("port 0 is not a port")
    address = _literal(host)
    loopback = (address is not None and _is_loopback(address)) or host.lower() in _LOCAL_NAMES
    if parts.scheme == "http" and not (allow_http_loopback and loopback):
        raise ForbiddenURLError("must use https")
    _check_host(host, address, allow_loopback=allow_http_loopback and loopback)
    return url


def _check_host(host: str, address: IPAddress | None, *, allow_loopback: bool) -> None:
    if address is not None:
        check_address(address, allow_loopback=allow_loopback)
    elif host.lower() in _LOCAL_NAMES or host.lower().endswith(_LOCAL_SUFFIXES):
        if not allow_loopback:
            raise ForbiddenURLError(f"{host!r} names a local host, not a public one")
    elif "." not in host:
        raise ForbiddenURLError(f"{host!r} is not a fully qualified public host name")
