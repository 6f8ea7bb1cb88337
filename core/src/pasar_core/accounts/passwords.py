"""Argon2id password hashing, run off the event loop (it is deliberately slow)."""

from __future__ import annotations

import asyncio
import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()  # stateless and thread-safe: parameters only


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the email is unknown, so both paths cost the same (made on the
    first such log-in, not at import: a hash takes a tenth of a second)."""
    return _HASHER.hash("pasar-timing-equaliser")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_HASHER.hash, password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches; with no hash, spend the same time and return False."""
    if password_hash is None:
        await asyncio.to_thread(lambda: _verify(_dummy_hash(), password))
        return False
    return await asyncio.to_thread(_verify, password_hash, password)
