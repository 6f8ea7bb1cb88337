"""Argon2id password hashing, run off the event loop (it is deliberately slow)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from pasar_core.errors import StartupError


@dataclass(frozen=True, slots=True)
class PasswordHashing:
    """Argon2id's cost for new hashes (`PASAR_ARGON2_*`); the defaults are argon2-cffi's
    (RFC 9106's low-memory profile). A hash keeps its own parameters, so verifying an older
    hash costs what it cost when made."""

    time_cost: int = 3
    memory_kib: int = 65_536
    parallelism: int = 4

    def __post_init__(self) -> None:
        if self.time_cost < 1 or self.parallelism < 1 or self.memory_kib < 8 * self.parallelism:
            raise StartupError(
                "PASAR_ARGON2_TIME_COST and PASAR_ARGON2_PARALLELISM must be at least 1 and "
                "PASAR_ARGON2_MEMORY_KIB at least 8 per lane"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PasswordHashing:
        def number(name: str, default: int) -> int:
            raw = env.get(name) or str(default)
            try:
                return int(raw)
            except ValueError:
                raise StartupError(f"{name} must be an integer, got {raw!r}") from None

        default = cls()
        return cls(
            time_cost=number("PASAR_ARGON2_TIME_COST", default.time_cost),
            memory_kib=number("PASAR_ARGON2_MEMORY_KIB", default.memory_kib),
            parallelism=number("PASAR_ARGON2_PARALLELISM", default.parallelism),
        )


DEFAULT_HASHING = PasswordHashing()


@functools.cache
def _hasher(cost: PasswordHashing) -> PasswordHasher:
    """Stateless and thread-safe: parameters only."""
    return PasswordHasher(
        time_cost=cost.time_cost, memory_cost=cost.memory_kib, parallelism=cost.parallelism
    )


@functools.cache
def _dummy_hash(cost: PasswordHashing) -> str:
    """Verified against when the email is unknown, so both paths cost the same (made on the
    first such log-in, not at import: a hash takes a tenth of a second)."""
    return _hasher(cost).hash("pasar-timing-equaliser")


async def hash_password(password: str, cost: PasswordHashing = DEFAULT_HASHING) -> str:
    return await asyncio.to_thread(_hasher(cost).hash, password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher(DEFAULT_HASHING).verify(password_hash, password)  # the hash's parameters
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(
    password_hash: str | None, password: str, cost: PasswordHashing = DEFAULT_HASHING
) -> bool:
    """True when `password` matches; with no hash, spend what a hash of `cost` takes to verify
    and return False."""
    if password_hash is None:
        await asyncio.to_thread(lambda: _verify(_dummy_hash(cost), password))
        return False
    return await asyncio.to_thread(_verify, password_hash, password)
