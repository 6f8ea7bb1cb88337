"""Every root field names its operation in the policy table (pasar_core.authz.policy):
`permission_classes=allowed("agents.read")`. Before the resolver runs, a signed-in operation
authenticates the caller and checks their role (INSUFFICIENT_ROLE, FORBIDDEN for operator
operations); resource operations check the resource too, in the service that reads it."""

from __future__ import annotations

from typing import Any, ClassVar

from pasar_core.authz.checks import require
from pasar_core.authz.policy import rule
from strawberry.permission import BasePermission

from pasar_graphql.context import Info


class Allowed(BasePermission):
    """The policy's check of one operation (a subclass per operation: see `allowed`)."""

    operation: ClassVar[str] = ""

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        if rule(self.operation).public:
            return True
        require(await info.context.principal(), self.operation)
        return True


def allowed(operation: str) -> list[type[BasePermission]]:
    """The permission classes of a field doing `operation` (an unknown name fails at import)."""
    rule(operation)
    name = "Allowed_" + operation.replace(".", "_")
    return [type(name, (Allowed,), {"operation": operation})]


def operation_of(permission_classes: list[type[BasePermission]]) -> str | None:
    """The operation a field's permission classes name (tests check every root field)."""
    for permission in permission_classes:
        if issubclass(permission, Allowed) and permission.operation:
            return permission.operation
    return None
