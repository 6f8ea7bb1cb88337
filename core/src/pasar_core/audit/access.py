"""Who may read the audit log. One function, so the policy table (teams) can take it over."""

from __future__ import annotations

from pasar_core.accounts.principal import Principal
from pasar_core.errors import Forbidden


def require_auditor(principal: Principal) -> None:
    """Admins read the audit log (today: the user's role, `Principal.role`)."""
    if principal.role != "admin":
        raise Forbidden("only admins read the audit log")
