"""The SSRF rules on their own, and signing against a published Standard Webhooks test vector."""

from __future__ import annotations

import pytest

from billplane.events.signing import signature
from billplane.events.types import matches
from billplane.events.urls import ForbiddenURLError, check_url


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000/h", "https://127.0.0.1/h", "http://localhost:9/h", "http://[::1]:9/h"]
)
def test_loopback_only_with_the_setting(url: str) -> None:
    assert check_url(url, allow_http_loopback=True) == url
    with pytest.raises(ForbiddenURLError):
        check_url(url, allow_http_loopback=False)


@pytest.mark.parametrize("url", ["https://hooks.example.com/h", "https://8.8.8.8/h", "https://example.com:8443/h?x=1"])
def test_public_https_is_accepted(url: str) -> None:
    assert check_url(url, allow_http_loopback=False) == url


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
