"""The checks that read the policy table: the caller's role against an operation (both API
edges, before the operation runs) and against one resource (the services, with the row the
resource's own read returned: no statement of its own)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from pasar_core.authz.policy import rule
from pasar_core.authz.roles import at_least, weaker
from pasar_core.errors import Forbidden, InsufficientRole, NotFound

if TYPE_CHECKING:
    from pasar_core.accounts.principal import Principal


def require(principal: Principal, operation: str) -> None:
    """Refuse (INSUFFICIENT_ROLE, or FORBIDDEN for operator operations) when no resource could
    make the operation allowed for this caller's role."""
    found = rule(operation)
    if found.public or found.signed_in:
        return
    if found.operator:
        if not principal.operator:
            raise Forbidden(f"only the server operator may do {operation}")
        return
    if found.or_operator and principal.operator:
        return
    least = found.least
    if least is not None and not at_least(principal.role, least):
        raise InsufficientRole(
            f"{operation} needs the {least} role; yours is {principal.role}",
            details={"operation": operation, "needed": least, "role": principal.role},
        )


def may(principal_role: str, operation: str, *, owner: bool, shared_role: str | None) -> bool:
    """The table's answer for a caller of `principal_role` in the resource's organisation,
    without raising (filters: the shared tools a member's agents may use)."""
    found = rule(operation)
    if owner:
        return found.own is not None and at_least(principal_role, found.own)
    if shared_role is None:
        return False
    if found.org_admins and at_least(principal_role, "admin"):
        return True
    needed = found.shared
    return needed is not None and at_least(weaker(principal_role, shared_role), needed)


def check_resource(
    principal: Principal,
    operation: str,
    *,
    what: str,
    resource_id: uuid.UUID,
    organisation_id: uuid.UUID,
    owner_id: uuid.UUID,
    shared_role: str | None,
) -> None:
    """Whether the caller may do `operation` on this resource. Another organisation's or
    another member's private resource is NOT_FOUND, exactly like a missing one."""
    found = rule(operation)
    hidden = NotFound(f"no {what} with id {str(resource_id)!r}")
    if organisation_id != principal.organisation_id:
        raise hidden
    if owner_id == principal.user_id:
        needed, acting = found.own, principal.role
    elif shared_role is not None:
        if found.org_admins and at_least(principal.role, "admin"):
            return
        needed, acting = found.shared, weaker(principal.role, shared_role)
    else:
        raise hidden
    if needed is None:
        raise InsufficientRole(
            f"only the {what}'s owner may do {operation}",
            details={"operation": operation, "owner_only": True},
        )
    if not at_least(acting, needed):
        raise InsufficientRole(
            f"{operation} on this {what} needs the {needed} role; you act as {acting}",
            details={"operation": operation, "needed": needed, "role": acting},
        )
