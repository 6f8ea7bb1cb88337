"""Whose audit rows a caller reads: an organisation's admins (the policy table lets them in)
read the rows of the organisation they act in; the server's operator reads every row, or one
organisation's when they ask."""

from __future__ import annotations

import uuid

from pasar_core.accounts.principal import Principal
from pasar_core.errors import NotFound


def audit_scope(principal: Principal, asked: uuid.UUID | None) -> uuid.UUID | None:
    """The organisation whose rows the caller reads (None: every row, the operator's view).
    Another organisation's id is answered like a missing one."""
    if principal.operator:
        return asked
    if asked is not None and asked != principal.organisation_id:
        raise NotFound(f"no organisation with id {str(asked)!r}")
    return principal.organisation_id
