"""PayPal webhook deliveries: what is refused locally, and the ``verify-webhook-signature`` request.

PayPal signs ``transmission_id|transmission_time|webhook_id|crc32(body)`` with a certificate it
names in ``paypal-cert-url``. billplane lets PayPal check that signature (``POST
/v1/notifications/verify-webhook-signature``) and never downloads the certificate itself (the
flaw FACTS.md found in paypalrestsdk). Before that call, a delivery is refused locally when a
header is missing, its time is outside the tolerance, its certificate is not on a PayPal host, or
its body is not a JSON object.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import msgspec

from billplane.plugins import WebhookVerificationError

HEADERS = {
    "paypal-transmission-id": "transmission_id",
    "paypal-transmission-time": "transmission_time",
    "paypal-transmission-sig": "transmission_sig",
    "paypal-cert-url": "cert_url",
    "paypal-auth-algo": "auth_algo",
}
# PayPal stamps every delivery (retries too) with its own transmission time, so a delivery older
# than this was captured and replayed, not retried.
TOLERANCE = timedelta(minutes=5)
CERT_HOSTS = frozenset({"api.paypal.com", "api.sandbox.paypal.com", "api-m.paypal.com", "api-m.sandbox.paypal.com"})


def _check_cert_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme != "https" or parts.hostname not in CERT_HOSTS or parts.port not in {None, 443}:
        raise WebhookVerificationError("the webhook's certificate is not on a PayPal host")


def _check_time(value: str, now: datetime) -> None:
    try:
        sent = datetime.fromisoformat(value)
    except ValueError:
        raise WebhookVerificationError("the webhook's transmission time is not a time") from None
    if sent.tzinfo is None:
        raise WebhookVerificationError("the webhook's transmission time has no time zone")
    if abs(now - sent) > TOLERANCE:
        raise WebhookVerificationError("the webhook's transmission time is outside the tolerance")


def transmission(headers: Mapping[str, str], now: datetime) -> dict[str, str]:
    """The signature fields from the delivery's headers, refused if incomplete, stale or foreign."""
    missing = sorted(name for name in HEADERS if not headers.get(name))
    if missing:
        raise WebhookVerificationError(f"the webhook lacks the headers {', '.join(missing)}")
    fields = {field: headers[name] for name, field in HEADERS.items()}
    _check_cert_url(fields["cert_url"])
    _check_time(fields["transmission_time"], now)
    return fields


def check_body(body: bytes) -> None:
    try:
        decoded = msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise WebhookVerificationError("the webhook's body is not JSON") from None
    if not isinstance(decoded, dict):
        raise WebhookVerificationError("the webhook's body is not a JSON object")


def verify_request(fields: Mapping[str, str], webhook_id: str, body: bytes) -> bytes:
    """The verification request with the event exactly as received: PayPal checks the CRC32 of
    ``webhook_event``, so the raw body is spliced in rather than decoded and encoded again (which
    could reorder keys or change number formats and fail a genuine delivery)."""
    head = msgspec.json.encode({**fields, "webhook_id": webhook_id})
    return head[:-1] + b',"webhook_event":' + body + b"}"
