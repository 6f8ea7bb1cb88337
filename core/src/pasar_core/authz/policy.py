"""The policy table: every operation of every API surface (REST routes, GraphQL fields, and
MCP once it exists) names one entry here, and nothing else decides who may do it.

A rule says which role the caller needs in the organisation they act in:
- `public`: no credentials needed (sign-up, log-in, health, the public catalogue);
- `signed_in`: any member of any role (their own account: `me`, password, log-out);
- `operator`: the server's operator (`users.operator`), whatever the organisation role
  (`or_operator`: an organisation operation the operator may also do, whatever their role);
- otherwise `own`: the role needed to do it at all (on one's own resources for resource
  operations), and for resource operations `shared`: the role needed on a resource another
  member shared with the organisation. On a shared resource the caller acts with the weaker of
  their role and the resource's `shared_role`; `shared=None` means only the owner may.
A resource of another organisation, or another member's private one, is NOT_FOUND.
`org_admins`: an admin of the organisation a resource is shared with may also do it, whatever
the resource's `shared_role` (taking a shared custom tool away from the organisation).
A few operations are asked by the services alone, never by a surface (`SERVICE_OPERATIONS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from pasar_core.authz.roles import RANK, Role


@dataclass(frozen=True, slots=True)
class Rule:
    own: Role | None = None
    shared: Role | None = None
    resource: bool = False
    public: bool = False
    signed_in: bool = False
    operator: bool = False
    or_operator: bool = False
    org_admins: bool = False

    @property
    def least(self) -> Role | None:
        """The weakest role that may do it anywhere (None: no organisation role is asked)."""
        least: Role | None = None
        for role in (self.own, self.shared):
            if role is not None and (least is None or RANK[role] < RANK[least]):
                least = role
        return least


PUBLIC = Rule(public=True)
SIGNED_IN = Rule(signed_in=True)
OPERATOR = Rule(operator=True)


def org(role: Role) -> Rule:
    """An operation in the caller's organisation that needs `role` (no single resource)."""
    return Rule(own=role)


def org_or_operator(role: Role) -> Rule:
    """`org(role)`, and the server's operator whatever their role (the operator's view spans
    every organisation)."""
    return Rule(own=role, or_operator=True)


def resource(own: Role, shared: Role | None) -> Rule:
    """An operation on one resource: `own` on the caller's, `shared` on a shared one."""
    return Rule(own=own, shared=shared, resource=True)


_TABLE: dict[str, Rule] = {
    # accounts and sessions
    "accounts.sign_up": PUBLIC,
    "accounts.log_in": PUBLIC,
    "accounts.refresh": PUBLIC,
    "accounts.log_out": PUBLIC,
    "accounts.me": SIGNED_IN,
    "accounts.change_password": SIGNED_IN,
    "accounts.switch_organisation": SIGNED_IN,
    "api_keys.create": org("viewer"),  # the key's role is capped at the caller's
    "api_keys.list": SIGNED_IN,
    "api_keys.revoke": SIGNED_IN,
    # organisations and members
    "organisations.list": SIGNED_IN,
    "organisations.create": SIGNED_IN,
    "members.list": org("viewer"),
    "members.invite": org("admin"),
    "members.invitations": org("admin"),
    "members.revoke_invitation": org("admin"),
    "invitations.mine": SIGNED_IN,
    "invitations.accept": SIGNED_IN,  # a session's: an API key joins nothing
    "invitations.decline": SIGNED_IN,
    "members.set_role": org("admin"),
    "members.remove": org("admin"),
    # agents
    "agents.create": org("member"),
    "agents.list": org("viewer"),
    "agents.read": resource("viewer", "viewer"),
    "agents.strategies": PUBLIC,  # the installed reasoning strategies (config.strategy)
    "agents.update": resource("member", "admin"),
    "agents.delete": resource("member", "admin"),
    "agents.share": resource("member", None),
    "agents.versions.list": resource("viewer", "viewer"),
    "agents.versions.read": resource("viewer", "viewer"),  # one version, or a diff of two
    "agents.versions.rollback": resource("member", "admin"),  # an update, so update's rule
    # threads are the caller's own turns on the agent (a member never sees another's):
    # deleting one only ever takes the caller's own memory away
    "agents.threads.list": resource("viewer", "viewer"),
    "agents.threads.read": resource("viewer", "viewer"),
    "agents.threads.delete": resource("viewer", "viewer"),
    "agents.secrets.list": resource("member", "admin"),
    "agents.secrets.write": resource("member", "admin"),
    "agents.connections.attach": resource("member", "member"),
    # detaching only ever takes access away: whoever attached a grant may always detach it
    # (a viewer since, or on an agent private again: pasar_core.agents.connections)
    "agents.connections.detach": resource("viewer", "viewer"),
    "agents.execute": resource("member", "member"),
    "agents.executions.list": resource("viewer", "viewer"),
    # an agent's knowledge (memory: "vector"): changed like the agent, read like it
    "agents.knowledge.add": resource("member", "admin"),
    "agents.knowledge.list": resource("viewer", "viewer"),
    "agents.knowledge.search": resource("viewer", "viewer"),
    "agents.knowledge.delete": resource("member", "admin"),
    # schedules are their owner's, like threads (another member's is NOT_FOUND); each run
    # is the owner's `agents.execute`, checked again when it fires. Making or resuming one
    # runs the agent, so execute's rule; pausing or deleting only ever stops one's own runs
    "agents.schedules.create": resource("member", "member"),
    "agents.schedules.list": resource("viewer", "viewer"),
    "agents.schedules.pause": resource("viewer", "viewer"),
    "agents.schedules.resume": resource("member", "member"),
    "agents.schedules.delete": resource("viewer", "viewer"),
    # executions: the runner's own
    "executions.read": org("viewer"),
    "executions.events": org("viewer"),
    "executions.cancel": org("member"),
    "executions.decide_approval": org("member"),
    "executions.webhook_secret": org("member"),
    # MCP (/mcp): listing the agents one may run as tools; each call is then `agents.execute`
    "mcp.tools": org("viewer"),
    # tools
    "tools.catalogue": PUBLIC,
    "tools.read": PUBLIC,
    "tools.register": org("member"),
    # --- custom tools shared with an organisation (issue 12) ---------------------------------
    # A custom tool is its owner's in every organisation they act in; shared, it is visible to
    # the organisation it is shared with. Only its owner changes, deletes or shares it; the
    # owner or an admin of that organisation makes it private again; members use it in their
    # agents acting with the weaker of their role and its shared role (so shared with
    # `viewer` it is only seen; with `member` or `admin` members and admins use it).
    "tools.update": resource("member", None),
    "tools.delete": resource("member", None),
    "tools.share": resource("member", None),
    "tools.unshare": Rule(own="member", resource=True, org_admins=True),
    "tools.custom.read": resource("viewer", "viewer"),  # its definition (GET /tools/{id})
    "tools.use": resource("viewer", "member"),  # named by an agent: checked at save and run
    # --- end of custom tool sharing -----------------------------------------------------------
    # the audit log: an organisation's admins read its rows; the operator every row
    "audit.list": org_or_operator("admin"),
    "audit.scope_usage": org_or_operator("admin"),
    # data protection: one's own data; the organisation's retention policy
    "privacy.export": SIGNED_IN,
    "privacy.erase": SIGNED_IN,
    "retention.read": org("viewer"),
    "retention.set": org("admin"),
    "plugins.install": OPERATOR,
    "plugins.list": OPERATOR,
    "plugins.remove": OPERATOR,
    # connections (a user's own OAuth grants) and consent
    "connections.list": SIGNED_IN,
    "connections.disconnect": SIGNED_IN,
    "connections.compile_scopes": PUBLIC,
    "consent.start": PUBLIC,
    "consent.callback": PUBLIC,
    # files written by the caller's runs
    "files.list": org("viewer"),
    "files.download": org("viewer"),
    # operations
    "operations.health": PUBLIC,
}

POLICY = MappingProxyType(_TABLE)

SERVICE_OPERATIONS = frozenset({"tools.custom.read", "tools.use"})
"""Operations the services ask inside a surface's operation (reading a shared tool within
`tools.read`, using one within an agent's save or run): no surface names them."""


def rule(operation: str) -> Rule:
    """The rule of an operation; a name missing from the table is a programming error."""
    try:
        return POLICY[operation]
    except KeyError:
        raise LookupError(f"operation {operation!r} has no entry in the policy table") from None
