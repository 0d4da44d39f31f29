"""The SSRF rules on their own, and signing against a published Standard Webhooks test vector."""

from __future__ import annotations

import ipaddress

import httpcore
import pytest

from billplane.events.sender import CheckedBackend
from billplane.events.signing import signature
from billplane.events.types import matches
from billplane.events.urls import ForbiddenURLError, check_address, check_url


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000/h", "https://127.0.0.1/h", "http://localhost:9/h", "http://[::1]:9/h"]
)
def test_loopback_only_with_the_setting(url: str) -> None:
    assert check_url(url, allow_http_loopback=True) == url
    with pytest.raises(ForbiddenURLError):
        check_url(url, allow_http_loopback=False)


def test_a_refused_http_loopback_url_names_the_setting_that_allows_it() -> None:
    with pytest.raises(ForbiddenURLError, match="BILLPLANE_WEBHOOKS_ALLOW_HTTP_LOOPBACK"):
        check_url("http://127.0.0.1:8139/hook", allow_http_loopback=False)
    with pytest.raises(ForbiddenURLError) as public:
        check_url("http://hooks.example.com/h", allow_http_loopback=False)
    assert str(public.value) == "must use https"


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/h",
        "https://8.8.8.8/h",
        "https://example.com:8443/h?x=1",
        "https://hooks.example.com./h",  # fully qualified, with the root's dot
        "https://bücher.example/h",  # IDNA
        "https://xn--bcher-kva.example/h",
        "https://my_app.example.com/h",
        "https://[2606:4700:4700::1111]/h",
        "https://[64:ff9b::808:808]/h",  # NAT64 of 8.8.8.8: what DNS64 answers on an IPv6-only network
    ],
)
def test_public_https_is_accepted(url: str) -> None:
    assert check_url(url, allow_http_loopback=False) == url


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks\x01.example.com/h",
        "https://hooks\x7f.example.com/h",
        "https://ho\u200boks.example.com/h",  # zero-width space
        "https://hooks.example.com/a\tb",
        "https://hooks.example.com/a b",
        "https://xn--zz.example.com/h",  # not valid IDNA
        "https://a..example.com/h",
        "https://.example.com/h",
        "https://example.com../h",
        "https://" + "a" * 64 + ".example.com/h",
        "https://" + "a23456789." * 26 + "com/h",  # 263 characters
        "https://ex%41mple.com/h",
    ],
)
def test_urls_no_delivery_could_use_are_refused(url: str) -> None:
    with pytest.raises(ForbiddenURLError):
        check_url(url, allow_http_loopback=True)


@pytest.mark.parametrize(
    "url",
    [
        "https://127.1/h",
        "https://0x7f.1/h",
        "https://0x7f000001/h",
        "https://2130706433/h",
        "https://0177.0.0.1/h",
        "https://10.1/h",
        "https://1.2.3.4.5/h",
        "https://134744072/h",  # 8.8.8.8, but not written as one
    ],
)
def test_ipv4_not_written_as_a_dotted_quad_is_refused(url: str) -> None:
    with pytest.raises(ForbiddenURLError):
        check_url(url, allow_http_loopback=True)


NOT_PUBLIC_V6 = [
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b:1::a00:1",  # local-use NAT64
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "::a00:1",  # IPv4-compatible 10.0.0.1
    "::ffff:a00:1",  # IPv4-mapped
    "fec0::1",  # site-local
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
]


@pytest.mark.parametrize("address", NOT_PUBLIC_V6)
def test_ipv6_carrying_a_private_ipv4_is_refused(address: str) -> None:
    with pytest.raises(ForbiddenURLError):
        check_address(ipaddress.ip_address(address), allow_loopback=False)
    with pytest.raises(ForbiddenURLError):
        check_url(f"https://[{address}]/h", allow_http_loopback=False)


async def test_ipv6_carrying_a_private_ipv4_is_refused_at_connect_time() -> None:
    backend = CheckedBackend(httpcore.AnyIOBackend(), allow_loopback=False)
    for address in NOT_PUBLIC_V6:
        with pytest.raises(httpcore.ConnectError, match="refused to connect"):
            await backend.connect_tcp(address, 443, timeout=1)


async def test_a_host_the_resolver_cannot_encode_is_a_connect_error() -> None:
    backend = CheckedBackend(httpcore.AnyIOBackend(), allow_loopback=False)
    with pytest.raises(httpcore.ConnectError, match="cannot resolve"):
        await backend.connect_tcp("a" * 64 + ".example.com", 443, timeout=1)


def test_http_to_a_public_host_is_refused_even_with_the_setting() -> None:
    with pytest.raises(ForbiddenURLError, match="https"):
        check_url("http://hooks.example.com/h", allow_http_loopback=True)


def test_signature_matches_the_specifications_example() -> None:
    # The example in the Standard Webhooks specification (spec/standard-webhooks.md).
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == (
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_patterns() -> None:
    assert matches([], "invoice.paid")
    assert matches(["*"], "invoice.paid")
    assert matches(["invoice.*"], "invoice.paid")
    assert not matches(["invoice.*"], "invoices.paid")
    assert not matches(["customer.created"], "invoice.paid")
