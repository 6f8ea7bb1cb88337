"""Who is calling: resolved from a bearer JWT or an API key."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from pasar_core.authz.roles import ROLES

__all__ = ["ROLES", "Principal"]


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: uuid.UUID
    email: str
    role: str
    """The caller's role in `organisation_id` (an API key's: the weaker of the key's role and
    its creator's current one)."""
    via: Literal["token", "api_key"]
    organisation_id: uuid.UUID
    """The organisation the credential acts in: a session's (chosen at log-in or by switching),
    an API key's own."""
    operator: bool = False
    """The server's operator (`users.operator`): sandboxed plugin installs."""
    api_key_id: uuid.UUID | None = None
    """The key a caller `via` api_key authenticated with (rate limits and the audit log)."""
    source: str | None = None
    """The client's address (`pasar_core.accounts.sources`), set by the surface that
    authenticated the request; None outside a request."""
