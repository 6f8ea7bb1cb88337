"""The roles of an organisation's members, weakest first."""

from __future__ import annotations

from typing import Literal

Role = Literal["viewer", "member", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "member", "admin")
RANK: dict[str, int] = {role: rank for rank, role in enumerate(ROLES)}


def at_least(role: str, needed: str) -> bool:
    """Whether `role` is `needed` or stronger (an unknown role is nothing)."""
    return RANK.get(role, -1) >= RANK[needed]


def weaker(first: str, second: str) -> str:
    """The weaker of two roles."""
    return first if RANK.get(first, -1) <= RANK.get(second, -1) else second
