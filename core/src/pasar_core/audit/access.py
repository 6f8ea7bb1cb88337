"""Who may read the audit log. One function, so the policy table (teams) can take it over."""

from __future__ import annotations

from pasar_core.accounts.principal import Principal
from pasar_core.errors import Forbidden


def require_auditor(principal: Principal) -> None:
    """The server's operator reads the audit log: its rows do not yet say which organisation
    they belong to, so an organisation's admin would read other organisations' rows."""
    if not principal.operator:
        raise Forbidden("only the server operator reads the audit log")
