"""Which webhook URLs billplane will POST to: the SSRF rules.

An endpoint URL must be ``https`` to a public address. With ``allow_http_loopback`` (local
development, tests) a loopback address may also be used, over ``http`` or ``https``. The rules run
twice: on the URL when an endpoint is created or changed (``check_url``: literal addresses and
well-known local names), and on every address the host name resolves to right before each
delivery connects (``check_address``; billplane connects to the address it checked, so a name
that resolves differently the second time cannot slip through).

``check_url`` also refuses what no delivery could ever be sent to (control characters, invalid
IDNA, empty or over-long labels): such a URL would fail every attempt, so the tenant hears it now.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from urllib.parse import urlsplit

import httpx
import idna

from billplane.events.options import ALLOW_HTTP_LOOPBACK_VARIABLE

MAX_URL_LENGTH = 2048
MAX_HOST_LENGTH = 253
_LOCAL_NAMES = ("localhost", "localhost.localdomain")
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa")
# Letters, digits, hyphens; underscores too: resolvers accept them and some real hosts have them.
_LABEL = re.compile(r"^[a-z0-9_-]{1,63}$")
# A last label that is a number makes the whole host an IPv4 address to resolvers and to the
# WHATWG URL parser (127.1, 0x7f.1, 2130706433): no top-level domain is numeric.
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 ranges that carry an IPv4 address in their last 32 bits: a NAT64 gateway or a 6to4 relay
# forwards to that address, so it is what must be public.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
# Not public, though this Python's ipaddress calls them global.
_NOT_PUBLIC_V6 = (ipaddress.IPv6Network("fec0::/10"), ipaddress.IPv6Network("64:ff9b:1::/48"))


class ForbiddenURLError(ValueError):
    """The URL or address is not one billplane sends webhooks to; the message says why."""


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):  # not :: nor ::1
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _unwrapped(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one carries (mapped, NAT64, 6to4, IPv4-compatible), else itself."""
    if isinstance(address, ipaddress.IPv6Address):
        return _embedded_ipv4(address) or address
    return address


def _is_loopback(address: IPAddress) -> bool:
    return _unwrapped(address).is_loopback


def check_address(address: IPAddress, *, allow_loopback: bool) -> None:
    """Refuse every address that is not public (private, link-local, loopback, reserved, ...)."""
    if isinstance(address, ipaddress.IPv6Address) and any(address in network for network in _NOT_PUBLIC_V6):
        raise ForbiddenURLError(f"{address} is not a public address (site-local or local-use NAT64)")
    address = _unwrapped(address)
    if address.is_loopback:
        if allow_loopback:
            return
        raise ForbiddenURLError("loopback addresses are not allowed")
    if not address.is_global or address.is_multicast:
        raise ForbiddenURLError(f"{address} is not a public address (private, link-local or reserved)")


def check_url(url: str, *, allow_http_loopback: bool) -> str:
    """The URL if billplane may send webhooks to it, else ``ForbiddenURLError`` with the reason."""
    _check_characters(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ForbiddenURLError(f"not a URL: {exc}") from None
    host = (parts.hostname or "").removesuffix(".")
    if parts.scheme not in {"http", "https"} or not host:
        raise ForbiddenURLError("must be an absolute https:// URL")
    if parts.username is not None or parts.password is not None:
        raise ForbiddenURLError("must not contain credentials (user:password@)")
    if parts.fragment:
        raise ForbiddenURLError("must not contain a fragment (#...)")
    if port == 0:
        raise ForbiddenURLError("port 0 is not a port")
    address = _literal(host)
    if address is None:
        _check_name(_sent_host(url))
    loopback = (address is not None and _is_loopback(address)) or host.lower() in _LOCAL_NAMES
    if parts.scheme == "http" and not (allow_http_loopback and loopback):
        if loopback:  # a developer's local receiver: say how the operator allows it
            raise ForbiddenURLError(
                f"must use https (http to a loopback address needs {ALLOW_HTTP_LOOPBACK_VARIABLE}=1)"
            )
        raise ForbiddenURLError("must use https")
    _check_host(host, address, allow_loopback=allow_http_loopback and loopback)
    return url


def _check_characters(url: str) -> None:
    # Control, format (zero-width), separator and unassigned characters: httpx refuses some at
    # send time, others would reach DNS or the request line; none belongs in a webhook URL.
    for position, character in enumerate(url):
        if unicodedata.category(character)[0] in {"C", "Z"}:
            raise ForbiddenURLError(f"must not contain {character!r} (position {position})")


def _sent_host(url: str) -> str:
    """The host as httpx will send it: ASCII, IDNA-encoded, lowercase."""
    try:
        raw = httpx.URL(url).raw_host.decode("ascii")
    except (httpx.InvalidURL, UnicodeError, ValueError) as exc:
        raise ForbiddenURLError(f"not a valid URL: {exc}") from None
    return raw.lower().removesuffix(".")


def _check_name(host: str) -> None:
    """A host name every resolver accepts: valid labels, valid IDNA, not a disguised IPv4 address."""
    if len(host) > MAX_HOST_LENGTH:
        raise ForbiddenURLError(f"the host name is longer than {MAX_HOST_LENGTH} characters")
    labels = host.split(".")
    for label in labels:
        if not _LABEL.match(label):
            raise ForbiddenURLError(f"{host!r} has an empty, over-long (> 63) or invalid label {label!r}")
        if label.startswith("xn--"):
            try:
                idna.decode(label)
            except (idna.IDNAError, UnicodeError, ValueError) as exc:
                raise ForbiddenURLError(f"{host!r} is not valid IDNA: {exc}") from None
    if _NUMERIC_LABEL.match(labels[-1]):
        raise ForbiddenURLError(f"{host!r} is not a dotted-quad IPv4 address (a.b.c.d) nor a host name")


def _check_host(host: str, address: IPAddress | None, *, allow_loopback: bool) -> None:
    if address is not None:
        check_address(address, allow_loopback=allow_loopback)
    elif host.lower() in _LOCAL_NAMES or host.lower().endswith(_LOCAL_SUFFIXES):
        if not allow_loopback:
            raise ForbiddenURLError(f"{host!r} names a local host, not a public one")
    elif "." not in host:
        raise ForbiddenURLError(f"{host!r} is not a fully qualified public host name")
