"""AES-GCM sealing under a key ring.

A sealed value is ``nonce (12 bytes) || ciphertext || tag``, stored beside the id of the key that
sealed it. The associated data names what the value is and whom it belongs to (the caller builds
it), so a ciphertext copied to another row, purpose or tenant fails to open instead of being
accepted there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from billplane.secrets.keys import KeyRing

NONCE_BYTES = 12


class UnreadableSecretError(Exception):
    """A sealed value cannot be opened: its key is not in the ring, or it was not sealed for this context."""


@dataclass(frozen=True, slots=True)
class Sealed:
    key_id: str
    blob: bytes = field(repr=False)

    def __repr__(self) -> str:
        return f"Sealed(key_id={self.key_id!r}, {len(self.blob)} bytes)"


class SecretBox:
    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring

    def __repr__(self) -> str:
        return f"SecretBox(current={self.ring.current.key_id!r}, keys={self.ring.key_ids!r})"

    @property
    def current_key_id(self) -> str:
        return self.ring.current.key_id

    def seal(self, plaintext: bytes, associated_data: bytes) -> Sealed:
        key = self.ring.current
        nonce = os.urandom(NONCE_BYTES)  # random 96-bit nonces: safe far beyond the number of secrets stored
        return Sealed(key.key_id, nonce + AESGCM(key.material).encrypt(nonce, plaintext, associated_data))

    def open(self, sealed: Sealed, associated_data: bytes) -> bytes:
        key = self.ring.get(sealed.key_id)
        if key is None:
            raise UnreadableSecretError(f"key {sealed.key_id!r} is not in BILLPLANE_ENCRYPTION_KEYS")
        nonce, body = sealed.blob[:NONCE_BYTES], sealed.blob[NONCE_BYTES:]
        try:
            return AESGCM(key.material).decrypt(nonce, body, associated_data)
        except InvalidTag:
            raise UnreadableSecretError(
                f"a value sealed under key {sealed.key_id!r} does not open: wrong key, or sealed for another owner"
            ) from None
