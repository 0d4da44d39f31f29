"""The encryption key ring: BILLPLANE_ENCRYPTION_KEYS, validated at start, and AES-GCM sealing under it."""

from __future__ import annotations

import base64

import pytest

from billplane.secrets.box import Sealed, SecretBox, UnreadableSecretError
from billplane.secrets.keys import (
    DERIVED_KEY_ID,
    KeyConfigError,
    build_ring,
    derived_key,
    generate_key,
    key_ring,
    parse_keys,
)
from billplane.settings import SettingsError, load_settings

SECRET = "s" * 40
K1 = bytes(range(32))
K2 = bytes(range(32, 64))
ENV = {"BILLPLANE_DATABASE_URL": "postgres://u:p@db/billing", "BILLPLANE_SECRET_KEY": SECRET}


def _entry(key_id: str, material: bytes, *, urlsafe: bool = False) -> str:
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    return f"{key_id}:{encode(material).decode()}"


def test_configured_keys_first_is_current_and_the_derived_key_still_opens() -> None:
    keys = parse_keys(f"{_entry('k2', K2)}, {_entry('k1', K1, urlsafe=True).rstrip('=')}")
    assert [(key.key_id, key.material) for key in keys] == [("k2", K2), ("k1", K1)]
    ring = build_ring(SECRET, keys)
    assert ring.current.key_id == "k2"
    assert ring.key_ids == ["k2", "k1", DERIVED_KEY_ID]


def test_without_configured_keys_one_key_is_derived_from_the_secret_key() -> None:
    ring = key_ring(SECRET, None)
    assert ring.current.key_id == DERIVED_KEY_ID
    assert ring.current == derived_key(SECRET)  # stable across processes and restarts
    assert derived_key("t" * 40).material != ring.current.material
    assert len(ring.current.material) == 32
    assert ring.current.material not in SECRET.encode()


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("k1", "entry 1: expected kid:base64key"),
        (f"{_entry('k1', K1)},", "entry 2: expected kid:base64key"),
        (f"bad kid:{base64.b64encode(K1).decode()}", "entry 1: the key id must match"),
        (_entry("k1", K1[:16]), "entry 1 (key id 'k1'): the key must be 32 bytes, got 16"),
        ("k1:not*base64!", "entry 1 (key id 'k1'): the key is not valid base64"),
        (f"{_entry('k1', K1)},{_entry('k1', K2)}", "entry 2 (key id 'k1'): the key id is listed twice"),
        (_entry("s0", K1), "'s0' is reserved"),
    ],
)
def test_malformed_keys_are_refused_without_showing_them(raw: str, problem: str) -> None:
    with pytest.raises(KeyConfigError) as caught:
        parse_keys(raw)
    assert problem in str(caught.value)
    for material in (K1, K2, K1[:16]):
        assert base64.b64encode(material).decode() not in str(caught.value)


def test_settings_validate_the_keys_at_load_and_never_echo_them() -> None:
    short = base64.b64encode(K1[:20]).decode()
    with pytest.raises(SettingsError) as caught:
        load_settings(ENV | {"BILLPLANE_ENCRYPTION_KEYS": f"k1:{short},k2"}, serving=False)
    message = str(caught.value)
    assert "BILLPLANE_ENCRYPTION_KEYS: entry 1 (key id 'k1'): the key must be 32 bytes, got 20" in message
    assert "BILLPLANE_ENCRYPTION_KEYS: entry 2: expected kid:base64key" in message
    assert short not in message

    configured = _entry("k1", K1)
    settings = load_settings(ENV | {"BILLPLANE_ENCRYPTION_KEYS": configured}, serving=False)
    assert settings.security.encryption_keys == configured
    assert base64.b64encode(K1).decode() not in repr(settings)
    assert load_settings(ENV, serving=False).security.encryption_keys is None


def test_sealed_values_open_only_with_their_key_and_associated_data() -> None:
    old = SecretBox(build_ring(SECRET, parse_keys(_entry("k1", K1))))
    sealed = old.seal(b"sk_live_1234", b"tenant 1")
    assert sealed.key_id == "k1"
    assert b"sk_live_1234" not in sealed.blob
    assert old.seal(b"sk_live_1234", b"tenant 1").blob != sealed.blob  # a fresh nonce each time
    assert old.open(sealed, b"tenant 1") == b"sk_live_1234"

    with pytest.raises(UnreadableSecretError, match="does not open"):
        old.open(sealed, b"tenant 2")
    tampered = Sealed(sealed.key_id, sealed.blob[:-1] + bytes([sealed.blob[-1] ^ 1]))
    with pytest.raises(UnreadableSecretError):
        old.open(tampered, b"tenant 1")
    with pytest.raises(UnreadableSecretError, match="does not open"):
        old.open(Sealed("s0", sealed.blob), b"tenant 1")  # another key of the ring

    rotated = SecretBox(build_ring(SECRET, parse_keys(f"{_entry('k2', K2)},{_entry('k1', K1)}")))
    assert rotated.open(sealed, b"tenant 1") == b"sk_live_1234"  # the old key still opens
    assert rotated.seal(b"x", b"tenant 1").key_id == "k2"  # the new one seals
    removed = SecretBox(build_ring(SECRET, parse_keys(_entry("k2", K2))))
    with pytest.raises(UnreadableSecretError, match="'k1' is not in BILLPLANE_ENCRYPTION_KEYS"):
        removed.open(sealed, b"tenant 1")


def test_keys_never_print() -> None:
    ring = build_ring(SECRET, parse_keys(_entry("k1", K1)))
    box = SecretBox(ring)
    sealed = box.seal(b"secret", b"ad")
    for text in (repr(ring), repr(box), repr(sealed), repr(ring.current), str(ring.keys)):
        assert str(K1) not in text
        assert K1.hex() not in text
        assert base64.b64encode(K1).decode() not in text
    assert "***" in repr(ring.current)


def test_generated_keys_parse() -> None:
    generated = generate_key("2026_11")
    [key] = parse_keys(generated)
    assert key.key_id == "2026_11"
    assert len(key.material) == 32
    assert parse_keys(generate_key("2026_11"))[0].material != key.material
    with pytest.raises(KeyConfigError):
        generate_key("s0")
