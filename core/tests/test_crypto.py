"""AES-256-GCM secrets: round trips, tampering, swapped rows and key rotation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pasar_core.crypto import DecryptionFailed, Keyring, Sealed, load_keyring, new_key, parse_keys
from pasar_core.errors import StartupError


def keyring(*ids: str) -> Keyring:
    return parse_keys(",".join(f"{kid}:{new_key()[1]}" for kid in ids))


@given(plaintext=st.binary(max_size=2000), aad=st.binary(max_size=100))
def test_round_trip(plaintext: bytes, aad: bytes) -> None:
    ring = keyring("a")
    sealed = ring.seal(plaintext, aad)
    assert len(plaintext) < 16 or plaintext not in sealed.blob
    assert ring.open(sealed, aad) == plaintext


def test_same_plaintext_encrypts_differently() -> None:
    ring = keyring("a")
    assert ring.seal(b"token", b"u1").blob != ring.seal(b"token", b"u1").blob


def test_tampered_ciphertext_and_other_rows_are_refused() -> None:
    ring = keyring("a")
    sealed = ring.seal_text("refresh-token", "user-1|google|refresh")
    flipped = bytearray(sealed.blob)
    flipped[-1] ^= 1
    with pytest.raises(DecryptionFailed):
        ring.open(Sealed(sealed.key_id, bytes(flipped)), b"user-1|google|refresh")
    with pytest.raises(DecryptionFailed):
        ring.open_text(sealed, "user-2|google|refresh")  # moved to another user's row
    with pytest.raises(DecryptionFailed):
        ring.open(Sealed(sealed.key_id, sealed.blob[:5]), b"user-1|google|refresh")


def test_rotation_keeps_old_keys_readable() -> None:
    old_id, old_key = new_key()
    new_id, fresh_key = new_key()
    before = parse_keys(f"{old_id}:{old_key}")
    sealed = before.seal(b"secret", b"row")
    after = parse_keys(f"{new_id}:{fresh_key},{old_id}:{old_key}")
    assert after.active_key_id == new_id
    assert after.open(sealed, b"row") == b"secret"
    assert after.seal(b"secret", b"row").key_id == new_id
    with pytest.raises(DecryptionFailed, match="no encryption key"):
        parse_keys(f"{new_id}:{fresh_key}").open(sealed, b"row")


def test_key_file_is_created_once_and_private(tmp_path: Path) -> None:
    key_file = tmp_path / "keys.json"
    first = load_keyring(None, key_file)
    assert key_file.stat().st_mode & 0o777 == 0o600
    second = load_keyring(None, key_file)
    assert second.open(first.seal(b"x", b"y"), b"y") == b"x"
    assert json.loads(key_file.read_text())["active"] == first.active_key_id


@pytest.mark.parametrize("spec", ["", "nokey", ":abc", "k1:!!!notbase64", "k1:c2hvcnQ="])
def test_bad_key_specs_are_startup_errors(spec: str) -> None:
    with pytest.raises(StartupError):
        parse_keys(spec)
