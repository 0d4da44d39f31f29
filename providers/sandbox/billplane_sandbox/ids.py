"""Provider ids the sandbox derives instead of storing: same account and idempotency key, same id.

An id reads ``sbx_<kind>_<digest>[_<param>...]_<check>``. The digest comes from the account and the
idempotency key, so a retried call returns the same object in any process and a new key a new
object. The params carry what a later call needs (a price's interval, a payment's amount and
outcome), because the sandbox remembers nothing. The check binds the id to its account: another
account's id, or an edited one, is "no such object", as at a real processor.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from billplane.plugins import ProviderError

PREFIX = "sbx"
KINDS = {
    "cus": "customer",
    "prod": "product",
    "price": "price",
    "sub": "subscription",
    "pay": "payment",
    "re": "refund",
}
_PARAM = re.compile(r"^[a-z0-9]+$")
_MIN_PARTS = 4  # prefix, kind, digest, check


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _check(account_id: int, body: str) -> str:
    return _hash(f"{account_id}\x00{body}")[:8]


def make_id(account_id: int, kind: str, idempotency_key: str, *params: str) -> str:
    if not idempotency_key:
        raise ProviderError("an idempotency key is required", code="invalid_request")
    if kind not in KINDS or not all(_PARAM.fullmatch(param) for param in params):
        raise ValueError(f"bad sandbox id parts: {kind!r} {params!r}")  # a bug in the sandbox, not the caller's
    digest = _hash(f"{account_id}\x00{kind}\x00{idempotency_key}")[:20]
    body = "_".join((PREFIX, kind, digest, *params))
    return f"{body}_{_check(account_id, body)}"


def parse_id(account_id: int, kind: str, provider_id: str) -> list[str]:
    """The params of an id this account's sandbox made, or ``ProviderError(code="resource_missing")``."""
    parts = provider_id.split("_")
    body, _, check = provider_id.rpartition("_")
    if (
        len(parts) < _MIN_PARTS
        or parts[0] != PREFIX
        or parts[1] != kind
        or not hmac.compare_digest(check, _check(account_id, body))
    ):
        raise ProviderError(f"no such {KINDS[kind]}: {provider_id!r}", code="resource_missing")
    return parts[3:-1]
