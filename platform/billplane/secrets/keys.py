"""The encryption key ring: every key that may open a stored secret, and the one that seals new ones.

``BILLPLANE_ENCRYPTION_KEYS`` is ``kid:base64key[,kid:base64key...]``; the first is current and
seals every new secret, the others only open what they sealed until ``billplane secrets rotate``
has moved it to the current key. A key derived from ``BILLPLANE_SECRET_KEY`` (key id ``s0``) is
always in the ring: it is the only key when the variable is unset, so a development setup needs no
extra configuration, and it keeps opening what it sealed after explicit keys are configured.
Key material never appears in a message, a ``repr`` or a log.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32  # AES-256
DERIVED_KEY_ID = "s0"
KEY_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_DERIVATION_INFO = b"billplane encryption key s0 v1"


class KeyConfigError(ValueError):
    """``BILLPLANE_ENCRYPTION_KEYS`` is malformed; ``problems`` says where, never showing key material."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True, slots=True)
class EncryptionKey:
    key_id: str
    material: bytes = field(repr=False)

    def __repr__(self) -> str:  # the material is never shown, even in a traceback
        return f"EncryptionKey(key_id={self.key_id!r}, material=***)"


@dataclass(frozen=True, slots=True)
class KeyRing:
    """``current`` seals; any key in ``keys`` opens what it sealed."""

    current: EncryptionKey
    keys: dict[str, EncryptionKey]

    def get(self, key_id: str) -> EncryptionKey | None:
        return self.keys.get(key_id)

    @property
    def key_ids(self) -> list[str]:
        return list(self.keys)


def derived_key(secret_key: str) -> EncryptionKey:
    """The ``s0`` key: HKDF-SHA256 of the server's secret key, for a setup with no explicit keys."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=_DERIVATION_INFO)
    return EncryptionKey(DERIVED_KEY_ID, hkdf.derive(secret_key.encode()))


def parse_keys(raw: str) -> list[EncryptionKey]:
    """``kid:base64key,...`` as keys, first = current; ``KeyConfigError`` listing every problem."""
    problems: list[str] = []
    keys: list[EncryptionKey] = []
    entries = [entry.strip() for entry in raw.split(",")]
    for number, entry in enumerate(entries, start=1):
        key_id, separator, encoded = entry.partition(":")
        key_id = key_id.strip()
        where = f"entry {number}"
        if not separator or not encoded.strip():
            problems.append(f"{where}: expected kid:base64key")
            continue
        if not KEY_ID_PATTERN.fullmatch(key_id):
            problems.append(f"{where}: the key id must match {KEY_ID_PATTERN.pattern}")
            continue
        where = f"{where} (key id {key_id!r})"
        if key_id == DERIVED_KEY_ID:
            problems.append(f"{where}: {DERIVED_KEY_ID!r} is reserved for the key derived from BILLPLANE_SECRET_KEY")
            continue
        if any(key.key_id == key_id for key in keys):
            problems.append(f"{where}: the key id is listed twice")
            continue
        material = _decode(encoded.strip())
        if material is None:
            problems.append(f"{where}: the key is not valid base64")
        elif len(material) != KEY_BYTES:
            problems.append(f"{where}: the key must be {KEY_BYTES} bytes, got {len(material)}")
        else:
            keys.append(EncryptionKey(key_id, material))
    if problems:
        raise KeyConfigError(problems)
    return keys


def _decode(encoded: str) -> bytes | None:
    """Standard or URL-safe base64, padding optional; None if it is neither."""
    padded = encoded + "=" * (-len(encoded) % 4)
    altchars = b"-_" if "-" in encoded or "_" in encoded else None
    try:
        return base64.b64decode(padded, altchars=altchars, validate=True)
    except (binascii.Error, ValueError):
        return None


def build_ring(secret_key: str, configured: Iterable[EncryptionKey] = ()) -> KeyRing:
    listed = list(configured)
    fallback = derived_key(secret_key)
    keys = {key.key_id: key for key in [*listed, fallback]}
    return KeyRing(current=listed[0] if listed else fallback, keys=keys)


@lru_cache(maxsize=4)
def key_ring(secret_key: str, encryption_keys: str | None) -> KeyRing:
    """The ring for these settings (validated at settings load, so a problem here is a bug)."""
    return build_ring(secret_key, parse_keys(encryption_keys) if encryption_keys else ())


def generate_key(key_id: str) -> str:
    """A new ``kid:base64key`` entry for ``BILLPLANE_ENCRYPTION_KEYS``."""
    if not KEY_ID_PATTERN.fullmatch(key_id) or key_id == DERIVED_KEY_ID:
        raise KeyConfigError([f"the key id must match {KEY_ID_PATTERN.pattern} and not be {DERIVED_KEY_ID!r}"])
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()}"
