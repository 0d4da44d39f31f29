"""Stored first responses are sealed: AES-GCM under a key derived from the server's secret key
and the client's Idempotency-Key.

A response can hold a secret (a new API key is shown once) or personal data; sealed, a copy of
the database alone reveals neither, and only a client presenting the same key gets it back.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE_BYTES = 12


class UnreadableResponseError(Exception):
    """The sealed response cannot be opened (the server's secret key changed since it was stored)."""


class ResponseSealer:
    def __init__(self, secret_key: str) -> None:
        self._master = hmac.new(secret_key.encode(), b"billplane idempotency v1", hashlib.sha256).digest()
        # Keys the request fingerprints, so a stored fingerprint reveals nothing about a body.
        self.fingerprint_key = hmac.new(self._master, b"request fingerprint", hashlib.sha256).digest()

    def _cipher(self, scope: str, key: str) -> tuple[AESGCM, bytes]:
        context = f"{scope}\x00{key}".encode()
        return AESGCM(hmac.new(self._master, context, hashlib.sha256).digest()), context

    def seal(self, scope: str, key: str, body: bytes) -> bytes:
        cipher, context = self._cipher(scope, key)
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + cipher.encrypt(nonce, body, context)

    def open(self, scope: str, key: str, sealed: bytes) -> bytes:
        cipher, context = self._cipher(scope, key)
        try:
            return cipher.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], context)
        except InvalidTag as exc:
            raise UnreadableResponseError from exc
