"""The world the authorisation matrix runs in: one organisation with a caller of every role and
a peer who owns (and shares) agents, a stranger in an organisation of their own, and for each
case fresh resources made through pasar_core's own services (the API refuses what some roles
may not make, so the matrix could not set itself up through it).

Relations of a case to the resource it names:
- `owner`: the caller's own, in the organisation they act in;
- `private`: the peer's private agent; `shared_viewer` / `shared_member` / `shared_admin`: the
  peer's agent shared with the organisation with that role;
- `other_org`: the stranger's (shared in their own organisation, so only the tenant differs);
- `own_other_org`: the caller's own, but in the caller's personal organisation (the credential
  acts in the team). Custom tools have no such case: a tool is its owner's in every
  organisation (the matrix leaves it out for them; test_tool_sharing checks it).

Custom tools take the same relations: the peer's private tool, the peer's tool shared with the
team at each role, the stranger's shared in their own organisation.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, field
from typing import Any

from pasar_core.accounts import api_key_store
from pasar_core.accounts.principal import Principal
from pasar_core.accounts.service import Credentials, sign_up
from pasar_core.agents.config import AgentInput
from pasar_core.agents.service import SharingInput, create_agent, share_agent
from pasar_core.audit.record import CLI
from pasar_core.authz.roles import ROLES
from pasar_core.custom_tools import service as custom_tools
from pasar_core.custom_tools.definition import ToolDefinition
from pasar_core.executions import store
from pasar_core.executions.status import ExecutionStatus
from pasar_core.organisations.invitations import InvitationInput, accept_invitation, invite
from pasar_core.organisations.store import OrganisationInput, create_organisation
from pasar_core.schemas import parse_model
from pasar_core.services import Services
from pasar_core.testing import TEST_PASSWORD
from starlette.testclient import TestClient

from tests.e2e.runs import scripted

RESOURCE_RELATIONS = (
    "owner", "private", "shared_viewer", "shared_member", "shared_admin", "other_org",
    "own_other_org",
)  # fmt: skip
ID_RELATIONS = ("owner", "other_org")
SHARED = {"shared_viewer": "viewer", "shared_member": "member", "shared_admin": "admin"}

TOOL_SOURCE = "def run(args):\n    return {'total': 1}\n"


def tool_body(tool_id: str) -> dict[str, Any]:
    return {
        "id": tool_id, "title": "Total", "description": "Adds.",
        "input_schema": {"type": "object", "properties": {}},
        "output_schema": {"type": "object"}, "effect": "read", "timeout_s": 5,
        "limits": {"memory_mb": 128, "cpus": 0.5}, "network": {"allow_hosts": []},
        "implementation": {"kind": "python", "source": TOOL_SOURCE, "entrypoint": "run"},
    }  # fmt: skip


@dataclass
class Person:
    principal: Principal
    """Acting in the team (or, for the stranger, their own organisation)."""
    personal: uuid.UUID
    headers: dict[str, str] = field(default_factory=dict)

    def in_org(self, organisation_id: uuid.UUID, role: str = "admin") -> Principal:
        p = self.principal
        return Principal(p.user_id, p.email, role, "token", organisation_id)


class Case:
    """What one request names: each resource is made for it when the request first asks."""

    def __init__(self, world: World, caller: Person, relation: str, *, resource: bool) -> None:
        self.world, self.caller, self.relation, self.resource = world, caller, relation, resource
        self.other = relation == "other_org"

    @functools.cached_property
    def agent(self) -> uuid.UUID:
        world, caller = self.world, self.caller
        if self.resource:
            return world.agent_for(caller, self.relation)
        return world.agent(caller.in_org(world.team))

    @functools.cached_property
    def execution(self) -> uuid.UUID:
        world, caller = self.world, self.caller
        if self.other:  # the caller's own run, in their personal organisation
            return world.execution(caller.in_org(caller.personal))
        return world.execution(caller.in_org(world.team))

    @functools.cached_property
    def member(self) -> uuid.UUID:
        return self.world.new_person(join=not self.other).principal.user_id

    @functools.cached_property
    def key(self) -> uuid.UUID:
        world = self.world
        owner = world.stranger.principal if self.other else self.caller.principal
        created = world.call(
            api_key_store.create_api_key, world.services, owner.user_id,
            api_key_store.ApiKeyRequest(), organisation_id=owner.organisation_id,
        )  # fmt: skip
        key_id: uuid.UUID = created.view.id
        return key_id

    @functools.cached_property
    def tool(self) -> str:
        world, relation = self.world, self.relation
        tool_id = f"t{uuid.uuid4().hex[:10]}:total"
        owner, role = self.caller.principal, None
        if self.other:
            owner, role = world.stranger.principal, "admin"
        elif self.resource and relation != "owner":
            assert relation == "private" or relation in SHARED, relation
            owner, role = world.peer.principal, SHARED.get(relation)
        definition = parse_model(ToolDefinition, tool_body(tool_id))
        world.call(custom_tools.register_tool, world.services, owner, definition)
        if role is not None:
            sharing = SharingInput.model_validate({"role": role})
            world.call(custom_tools.share_tool, world.services, owner, tool_id, sharing)
        return tool_id

    @functools.cached_property
    def new_tool(self) -> str:
        return f"n{uuid.uuid4().hex[:10]}:total"


class World:
    def __init__(self, client: TestClient) -> None:
        self.client = client
        assert client.portal is not None
        self.portal = client.portal
        self.services: Services = client.app_state["services"]
        self.founder = self._person()
        team = parse_model(OrganisationInput, {"name": "team"})  # a personal one invites none
        created = self.call(create_organisation, self.services, self.founder.principal, team)
        self.team = created.organisation_id
        self.founder.principal = self.founder.in_org(self.team)
        self.peer = self._person(role="member")
        self.stranger = self._person(join=False)
        self.callers = {role: self._person(role=role) for role in ROLES}
        for person in (self.founder, self.peer, *self.callers.values()):
            person.headers = self._headers(person, self.team)
        self.stranger.headers = self._headers(self.stranger, self.stranger.personal)

    def call(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        async def run() -> Any:
            return await function(*args, **kwargs)

        return self.portal.call(run)

    def _person(self, *, role: str | None = None, join: bool = True) -> Person:
        email = f"m-{uuid.uuid4().hex[:12]}@example.com"
        credentials = parse_model(Credentials, {"email": email, "password": TEST_PASSWORD})
        signed = self.call(sign_up, self.services, credentials)
        user = signed.user
        principal = Principal(user.id, user.email, "admin", "token", signed.organisation_id)
        person = Person(principal, signed.organisation_id)
        if role is not None and join:
            offer = parse_model(InvitationInput, {"email": email, "role": role})
            invitation = self.call(invite, self.services, self.team, offer, actor=CLI)
            self.call(accept_invitation, self.services, principal, invitation.id,
                      invitation.secret)  # fmt: skip
            person.principal = person.in_org(self.team, role)
        return person

    def _headers(self, person: Person, organisation_id: uuid.UUID) -> dict[str, str]:
        credentials = {"email": person.principal.email, "password": TEST_PASSWORD}
        token = self.client.post("/auth/token", json=credentials).json()["access_token"]
        switched = self.client.post(
            "/auth/switch", json={"organisation_id": str(organisation_id)},
            headers={"Authorization": f"Bearer {token}"},
        )  # fmt: skip
        assert switched.status_code == 200, switched.text
        return {"Authorization": f"Bearer {switched.json()['access_token']}"}

    # --- resources ------------------------------------------------------------------------

    def agent(self, owner: Principal, shared_role: str | None = None) -> uuid.UUID:
        data = parse_model(AgentInput, {"name": "m", "tools": [], "config": scripted()})
        saved = self.call(create_agent, self.services, owner, data)
        if shared_role is not None:
            self.call(
                share_agent, self.services, owner, saved.agent.id,
                SharingInput.model_validate({"role": shared_role}),
            )  # fmt: skip
        agent_id: uuid.UUID = saved.agent.id
        return agent_id

    def agent_for(self, caller: Person, relation: str) -> uuid.UUID:
        if relation == "owner":
            return self.agent(caller.in_org(self.team))
        if relation == "private":
            return self.agent(self.peer.principal)
        if relation in SHARED:
            return self.agent(self.peer.principal, SHARED[relation])
        if relation == "other_org":
            return self.agent(self.stranger.principal, "admin")
        assert relation == "own_other_org"
        return self.agent(caller.in_org(caller.personal))

    def execution(self, runner: Principal) -> uuid.UUID:
        agent_id = self.agent(runner)

        async def create() -> uuid.UUID:
            values = {
                "agent_id": agent_id, "user_id": runner.user_id, "input": "hi",
                "parameters": {}, "output": {"text": "cached"}, "cached": True,
                "executor": "inline", "organisation_id": runner.organisation_id,
            }  # fmt: skip
            async with self.services.sessionmaker.begin() as session:
                return await store.create(
                    session, values, status=ExecutionStatus.SUCCEEDED,
                    event={"status": "succeeded", "output": {"text": "cached"}, "cached": True},
                )  # fmt: skip

        return self.portal.call(create)

    def new_person(self, *, join: bool) -> Person:
        """A user who is a viewer of the team (or, not joining, of no organisation but theirs)."""
        return self._person(role="viewer" if join else None, join=join)
