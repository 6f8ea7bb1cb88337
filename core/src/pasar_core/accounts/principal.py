"""Who is calling: resolved from a bearer JWT or an API key."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

ROLES = ("admin", "member", "viewer")


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: uuid.UUID
    email: str
    role: str
    via: Literal["token", "api_key"]
