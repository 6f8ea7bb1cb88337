"""Secrets at rest: AES-256-GCM with a key id per ciphertext, and associated data binding a
ciphertext to its row (user, provider, purpose) so a value copied to another row fails to open.

Keys come from `PASAR_ENCRYPTION_KEYS` (`kid:base64key,kid2:base64key`, first is active) or,
by default, a key file in the data dir created on first use (mode 600).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pasar_core.errors import PasarError, StartupError
from pasar_core.key_files import create_once

NONCE_BYTES = 12
KEY_BYTES = 32


class DecryptionFailed(PasarError):
    """A ciphertext was tampered with, moved to another row, or its key is gone."""

    code = "DECRYPTION_FAILED"


@dataclass(frozen=True, slots=True)
class Sealed:
    key_id: str
    blob: bytes  # nonce || ciphertext+tag


class Keyring:
    """Encrypts with the active key; decrypts with whichever key id a ciphertext names."""

    def __init__(self, keys: Mapping[str, bytes], active: str) -> None:
        if active not in keys:
            raise StartupError(f"active encryption key {active!r} is not in the keyring")
        for key_id, key in keys.items():
            if len(key) != KEY_BYTES:
                raise StartupError(f"encryption key {key_id!r} must be {KEY_BYTES} bytes")
        self._keys = dict(keys)
        self.active_key_id = active

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def seal(self, plaintext: bytes, associated_data: bytes) -> Sealed:
        nonce = secrets.token_bytes(NONCE_BYTES)
        ciphertext = AESGCM(self._keys[self.active_key_id]).encrypt(
            nonce, plaintext, associated_data
        )
        return Sealed(key_id=self.active_key_id, blob=nonce + ciphertext)

    def open(self, sealed: Sealed, associated_data: bytes) -> bytes:
        key = self._keys.get(sealed.key_id)
        if key is None:
            raise DecryptionFailed(f"no encryption key with id {sealed.key_id!r}")
        nonce, ciphertext = sealed.blob[:NONCE_BYTES], sealed.blob[NONCE_BYTES:]
        try:
            return AESGCM(key).decrypt(nonce, ciphertext, associated_data)
        except (InvalidTag, ValueError):
            raise DecryptionFailed("stored secret failed authentication") from None

    def seal_text(self, plaintext: str, associated_data: str) -> Sealed:
        return self.seal(plaintext.encode(), associated_data.encode())

    def open_text(self, sealed: Sealed, associated_data: str) -> str:
        return self.open(sealed, associated_data.encode()).decode()


def parse_keys(spec: str) -> Keyring:
    """`kid:base64key[,kid:base64key...]`; the first key encrypts, all of them decrypt."""
    keys: dict[str, bytes] = {}
    for item in (part.strip() for part in spec.split(",") if part.strip()):
        key_id, sep, encoded = item.partition(":")
        if not sep or not key_id:
            raise StartupError("PASAR_ENCRYPTION_KEYS entries must look like kid:base64key")
        try:
            keys[key_id] = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except ValueError:
            raise StartupError(f"encryption key {key_id!r} is not valid base64") from None
    if not keys:
        raise StartupError("PASAR_ENCRYPTION_KEYS is empty")
    return Keyring(keys, active=next(iter(keys)))


def new_key() -> tuple[str, str]:
    """A fresh (key id, urlsafe base64 key) pair."""
    return f"k{secrets.token_hex(4)}", base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode()


def load_keyring(spec: str | None, key_file: Path) -> Keyring:
    """From `spec` if given, else from `key_file`, creating it with one key on first use."""
    if spec:
        return parse_keys(spec)
    key_id, key = new_key()
    text = create_once(key_file, json.dumps({"active": key_id, "keys": {key_id: key}}))
    try:
        data = json.loads(text)
        keys = {kid: base64.urlsafe_b64decode(value) for kid, value in data["keys"].items()}
        active = data["active"]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise StartupError(
            f"{key_file} is not a valid key file; restore it from a backup (secrets stored "
            "with its keys cannot be read without it)"
        ) from None
    return Keyring(keys, active=active)
