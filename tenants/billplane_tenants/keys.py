"""API keys: generation and peppered HMAC-SHA256 digests.

Keys are 256-bit random strings, so a fast keyed hash is enough (argon2/bcrypt would cost
~200 ms per request, see FACTS.md); the pepper lives only in the server's settings, so a leaked
database does not let anyone test guesses offline.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

TENANT_KEY_PREFIX = "bpk_"
DISPLAY_PREFIX_LENGTH = 12


def derive_pepper(secret_key: str) -> bytes:
    """A sub-key for API-key digests, so the secret key itself is never used for two purposes."""
    return hmac.new(secret_key.encode(), b"billplane api-key pepper v1", hashlib.sha256).digest()


def new_key() -> str:
    return TENANT_KEY_PREFIX + secrets.token_urlsafe(32)


def key_digest(pepper: bytes, key: str) -> str:
    # hmac.digest: the one-shot C path, a few times faster than hmac.new (it runs per request).
    return hmac.digest(pepper, key.encode(), "sha256").hex()


def display_prefix(key: str) -> str:
    return key[:DISPLAY_PREFIX_LENGTH]
