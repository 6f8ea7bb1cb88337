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
    api_key_id: uuid.UUID | None = None
    """The key a caller `via` api_key authenticated with (rate limits and the audit log)."""
    source: str | None = None
    """The client's address (`pasar_core.accounts.sources`), set by the surface that
    authenticated the request; None outside a request."""
