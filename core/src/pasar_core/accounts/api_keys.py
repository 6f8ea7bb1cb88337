"""API keys: random secrets shown once, stored as SHA-256 (they carry 256 bits of entropy)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

KEY_PREFIX = "psr_"


@dataclass(frozen=True, slots=True)
class NewApiKey:
    plaintext: str
    prefix: str
    key_hash: str


def generate_api_key() -> NewApiKey:
    public = secrets.token_hex(4)
    plaintext = f"{KEY_PREFIX}{public}_{secrets.token_urlsafe(32)}"
    return NewApiKey(
        plaintext=plaintext, prefix=f"{KEY_PREFIX}{public}", key_hash=hash_api_key(plaintext)
    )


def hash_api_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def looks_like_api_key(value: str) -> bool:
    return value.startswith(KEY_PREFIX)
