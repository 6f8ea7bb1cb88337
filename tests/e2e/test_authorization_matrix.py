"""The authorisation matrix: every operation of both API surfaces, for every role, on the
caller's own resources, another member's (private and shared at each role) and another
organisation's, answered by the real server on real PostgreSQL and compared with what the
policy table says (pasar_core.authz.policy). Every REST route and GraphQL root field must name
an operation of the table and have a request here: adding one without both fails.

An answer is `denied` (403 INSUFFICIENT_ROLE, or FORBIDDEN for the operator's operations),
`hidden` (404 naming the id that was sent: reported like a missing resource) or `allowed`
(anything else: the authorisation let it through, whatever the operation then said).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from pasar_core.authz.policy import POLICY, SERVICE_OPERATIONS, Rule, rule
from pasar_core.authz.roles import ROLES, at_least, weaker
from pasar_graphql.executions.resolvers import Subscription
from pasar_graphql.permissions import operation_of
from pasar_graphql.schema import Mutation, Query
from starlette.testclient import TestClient
from strawberry.types.base import get_object_definition

from pasar.mcp_server import MCP_OPERATIONS
from pasar.rest.routes import ENDPOINTS
from tests.e2e.authz_world import ID_RELATIONS, RESOURCE_RELATIONS, SHARED, Case, World, tool_body

Request = tuple[str, str, Any]
"""(method, path, JSON body or None); for GraphQL (query, variables, the field's name)."""


def expected(found: Rule, role: str, relation: str) -> str:
    """What the policy table says one caller gets."""
    if found.public or found.signed_in:
        return (
            "hidden"
            if relation in ("other_org", "own_other_org") and found.signed_in
            else ("allowed")
        )
    if found.operator:
        return "denied"
    if found.least is not None and not at_least(role, found.least):
        return "denied"
    if not found.resource or relation == "owner":
        if relation in ("other_org", "own_other_org"):
            return "hidden"
        assert found.own is not None
        return "allowed" if at_least(role, found.own) else "denied"
    if relation in ("private", "other_org", "own_other_org"):
        return "hidden"
    if found.org_admins and role == "admin":
        return "allowed"
    if found.shared is None:
        return "denied"
    return "allowed" if at_least(weaker(role, SHARED[relation]), found.shared) else "denied"


def observed(
    status: int, code: str | None, message: str, sent_ids: list[str], *, public: bool
) -> str:
    assert code != "GRAPHQL_VALIDATION_FAILED", f"the matrix sent a wrong document: {message}"
    if status == 401 and not public:  # a public operation may refuse what its body carries
        return "unauthenticated"  # never expected: every caller sends valid credentials
    if code == "INSUFFICIENT_ROLE" or (code == "FORBIDDEN" and "operator" in message):
        return "denied"
    if status == 404 and any(sent in message for sent in sent_ids):
        return "hidden"
    return "allowed"


# --- REST: one request per route --------------------------------------------------------------

REST: dict[tuple[str, str], Callable[[Case], Request]] = {
    ("POST", "/auth/signup"): lambda c: ("POST", "/auth/signup", {"email": f"x{uuid.uuid4().hex[:8]}@example.com", "password": "a-long-password"}),
    ("POST", "/auth/token"): lambda c: ("POST", "/auth/token", {"email": "nobody@example.com", "password": "wrong-password"}),
    ("POST", "/auth/refresh"): lambda c: ("POST", "/auth/refresh", {"refresh_token": "psrt_nothing"}),
    ("POST", "/auth/logout"): lambda c: ("POST", "/auth/logout", {"refresh_token": "psrt_nothing"}),
    ("POST", "/auth/password"): lambda c: ("POST", "/auth/password", {"current_password": "not-the-password", "new_password": "another-password"}),
    ("POST", "/api-keys"): lambda c: ("POST", "/api-keys", {"name": "m"}),
    ("GET", "/api-keys"): lambda c: ("GET", "/api-keys", None),
    ("DELETE", "/api-keys/{key_id}"): lambda c: ("DELETE", f"/api-keys/{c.key}", None),
    ("GET", "/organisations"): lambda c: ("GET", "/organisations", None),
    ("POST", "/organisations"): lambda c: ("POST", "/organisations", {"name": "team"}),
    ("POST", "/auth/switch"): lambda c: ("POST", "/auth/switch", {"organisation_id": str(c.world.team)}),
    ("GET", "/members"): lambda c: ("GET", "/members", None),
    ("POST", "/invitations"): lambda c: ("POST", "/invitations", {"email": c.world.new_person(join=False).principal.email, "role": "viewer"}),
    ("GET", "/invitations"): lambda c: ("GET", "/invitations", None),
    ("DELETE", "/invitations/{invitation_id}"): lambda c: ("DELETE", f"/invitations/{uuid.uuid4()}", None),
    ("GET", "/me/invitations"): lambda c: ("GET", "/me/invitations", None),
    ("POST", "/me/invitations/{invitation_id}/accept"): lambda c: ("POST", f"/me/invitations/{uuid.uuid4()}/accept", {"secret": "not-the-secret"}),
    ("POST", "/me/invitations/{invitation_id}/decline"): lambda c: ("POST", f"/me/invitations/{uuid.uuid4()}/decline", None),
    ("PUT", "/members/{user_id}"): lambda c: ("PUT", f"/members/{c.member}", {"role": "member"}),
    ("DELETE", "/members/{user_id}"): lambda c: ("DELETE", f"/members/{c.member}", None),
    ("GET", "/tools"): lambda c: ("GET", "/tools", None),
    ("GET", "/strategies"): lambda c: ("GET", "/strategies", None),
    ("POST", "/tools"): lambda c: ("POST", "/tools", tool_body(c.new_tool)),
    ("GET", "/tools/{tool_id}"): lambda c: ("GET", f"/tools/{c.tool}", None),
    ("PUT", "/tools/{tool_id}"): lambda c: ("PUT", f"/tools/{c.tool}", tool_body(c.tool)),
    ("DELETE", "/tools/{tool_id}"): lambda c: ("DELETE", f"/tools/{c.tool}", None),
    ("PUT", "/tools/{tool_id}/sharing"): lambda c: ("PUT", f"/tools/{c.tool}/sharing", {"role": "viewer"}),
    ("DELETE", "/tools/{tool_id}/sharing"): lambda c: ("DELETE", f"/tools/{c.tool}/sharing", None),
    ("POST", "/plugins/sandboxed"): lambda c: ("POST", "/plugins/sandboxed", {"requirement": "nothing"}),
    ("GET", "/plugins/sandboxed"): lambda c: ("GET", "/plugins/sandboxed", None),
    ("DELETE", "/plugins/sandboxed/{name}"): lambda c: ("DELETE", "/plugins/sandboxed/nothing", None),
    ("POST", "/agents"): lambda c: ("POST", "/agents", {"name": "m", "tools": [], "config": {"model": "scripted"}}),
    ("GET", "/agents"): lambda c: ("GET", "/agents", None),
    ("GET", "/agents/{agent_id}"): lambda c: ("GET", f"/agents/{c.agent}", None),
    ("PUT", "/agents/{agent_id}"): lambda c: ("PUT", f"/agents/{c.agent}", {"name": "renamed"}),
    ("DELETE", "/agents/{agent_id}"): lambda c: ("DELETE", f"/agents/{c.agent}", None),
    ("PUT", "/agents/{agent_id}/sharing"): lambda c: ("PUT", f"/agents/{c.agent}/sharing", {"role": "viewer"}),
    ("GET", "/agents/{agent_id}/versions"): lambda c: ("GET", f"/agents/{c.agent}/versions", None),
    ("GET", "/agents/{agent_id}/versions/{n}"): lambda c: ("GET", f"/agents/{c.agent}/versions/1", None),
    ("GET", "/agents/{agent_id}/versions/{a}/diff/{b}"): lambda c: ("GET", f"/agents/{c.agent}/versions/1/diff/1", None),
    ("POST", "/agents/{agent_id}/versions/{n}/rollback"): lambda c: ("POST", f"/agents/{c.agent}/versions/1/rollback", None),
    ("GET", "/agents/{agent_id}/threads"): lambda c: ("GET", f"/agents/{c.agent}/threads", None),
    ("GET", "/agents/{agent_id}/threads/{thread_id}"): lambda c: ("GET", f"/agents/{c.agent}/threads/nothing", None),
    ("DELETE", "/agents/{agent_id}/threads/{thread_id}"): lambda c: ("DELETE", f"/agents/{c.agent}/threads/nothing", None),
    ("PUT", "/agents/{agent_id}/connections/{provider}"): lambda c: ("PUT", f"/agents/{c.agent}/connections/google", None),
    ("DELETE", "/agents/{agent_id}/connections/{provider}"): lambda c: ("DELETE", f"/agents/{c.agent}/connections/google", None),
    ("GET", "/agents/{agent_id}/secrets"): lambda c: ("GET", f"/agents/{c.agent}/secrets", None),
    ("PUT", "/agents/{agent_id}/secrets/{name}"): lambda c: ("PUT", f"/agents/{c.agent}/secrets/nothing", {"value": "x"}),
    ("DELETE", "/agents/{agent_id}/secrets/{name}"): lambda c: ("DELETE", f"/agents/{c.agent}/secrets/nothing", None),
    ("POST", "/agents/{agent_id}/execute"): lambda c: ("POST", f"/agents/{c.agent}/execute", {"input": "hi", "parameters": {"wait": False}}),
    # knowledge: bodies that pass validation and are refused only after the agent is checked
    ("POST", "/agents/{agent_id}/knowledge"): lambda c: ("POST", f"/agents/{c.agent}/knowledge", {"name": "n", "text": " "}),
    ("POST", "/agents/{agent_id}/knowledge/files"): lambda c: ("POST", f"/agents/{c.agent}/knowledge/files", {"filename": "x.exe", "content_base64": "eA=="}),
    ("GET", "/agents/{agent_id}/knowledge"): lambda c: ("GET", f"/agents/{c.agent}/knowledge", None),
    ("POST", "/agents/{agent_id}/knowledge/search"): lambda c: ("POST", f"/agents/{c.agent}/knowledge/search", {"query": "anything"}),
    ("DELETE", "/agents/{agent_id}/knowledge/{document_id}"): lambda c: ("DELETE", f"/agents/{c.agent}/knowledge/nothing", None),
    # schedules: a valid body creates one; another id is refused only after the agent is checked
    ("POST", "/agents/{agent_id}/schedules"): lambda c: ("POST", f"/agents/{c.agent}/schedules", {"cron": "0 9 * * *", "input": "hi"}),
    ("GET", "/agents/{agent_id}/schedules"): lambda c: ("GET", f"/agents/{c.agent}/schedules", None),
    ("POST", "/agents/{agent_id}/schedules/{schedule_id}/pause"): lambda c: ("POST", f"/agents/{c.agent}/schedules/{uuid.uuid4()}/pause", None),
    ("POST", "/agents/{agent_id}/schedules/{schedule_id}/resume"): lambda c: ("POST", f"/agents/{c.agent}/schedules/{uuid.uuid4()}/resume", None),
    ("DELETE", "/agents/{agent_id}/schedules/{schedule_id}"): lambda c: ("DELETE", f"/agents/{c.agent}/schedules/nothing", None),
    ("GET", "/agents/{agent_id}/executions"): lambda c: ("GET", f"/agents/{c.agent}/executions", None),
    ("GET", "/executions/{execution_id}"): lambda c: ("GET", f"/executions/{c.execution}", None),
    ("GET", "/executions/{execution_id}/events"): lambda c: ("GET", f"/executions/{c.execution}/events", None),
    ("POST", "/executions/{execution_id}/cancel"): lambda c: ("POST", f"/executions/{c.execution}/cancel", None),
    ("POST", "/executions/{execution_id}/approval"): lambda c: ("POST", f"/executions/{c.execution}/approval", {"decision": "approve"}),
    ("GET", "/webhook-secret"): lambda c: ("GET", "/webhook-secret", None),
    ("GET", "/audit"): lambda c: ("GET", "/audit?limit=1", None),
    ("GET", "/audit/scope-usage"): lambda c: ("GET", "/audit/scope-usage", None),
    ("GET", "/me/export"): lambda c: ("GET", "/me/export", None),
    ("DELETE", "/me"): lambda c: ("DELETE", "/me", {"password": "not-the-password"}),
    ("GET", "/retention"): lambda c: ("GET", "/retention", None),
    ("PUT", "/retention"): lambda c: ("PUT", "/retention", {"execution_days": None}),
    ("GET", "/healthz"): lambda c: ("GET", "/healthz", None),
    ("GET", "/readyz"): lambda c: ("GET", "/readyz", None),
    ("GET", "/files"): lambda c: ("GET", "/files", None),
    ("GET", "/files/{path:path}"): lambda c: ("GET", "/files/nothing.txt", None),
    ("GET", "/auth/{provider}/start"): lambda c: ("GET", "/auth/google/start?state=nothing", None),
    ("POST", "/auth/{provider}/start"): lambda c: ("POST", "/auth/google/start", None),
    ("GET", "/auth/{provider}/callback"): lambda c: ("GET", "/auth/google/callback?state=x&code=y", None),
    ("GET", "/connections"): lambda c: ("GET", "/connections", None),
    ("DELETE", "/connections/{provider}"): lambda c: ("DELETE", "/connections/google", None),
}  # fmt: skip

# --- GraphQL: one document per root field ------------------------------------------------------

GRAPHQL: dict[str, Callable[[Case], tuple[str, dict[str, Any]]]] = {
    "tools": lambda c: ("{ tools { id } }", {}),
    "strategies": lambda c: ("{ strategies { id } }", {}),
    "tool": lambda c: ("query($id: String!) { tool(id: $id) { id } }", {"id": c.tool}),
    "agents": lambda c: ("{ agents { id } }", {}),
    "agent": lambda c: ("query($id: ID!) { agent(id: $id) { id } }", {"id": str(c.agent)}),
    "me": lambda c: ("{ me { id } }", {}),
    "apiKeys": lambda c: ("{ apiKeys { id } }", {}),
    "execution": lambda c: ("query($id: ID!) { execution(id: $id) { id } }", {"id": str(c.execution)}),
    "executions": lambda c: ("query($a: ID!) { executions(agentId: $a) { endCursor } }", {"a": str(c.agent)}),
    "compileScopes": lambda c: ('{ compileScopes(tools: ["txt:read"]) { provider } }', {}),
    "connections": lambda c: ("{ connections { provider } }", {}),
    "organisations": lambda c: ("{ organisations { id } }", {}),
    "members": lambda c: ("{ members { userId } }", {}),
    "invitations": lambda c: ("{ invitations { id } }", {}),
    "myInvitations": lambda c: ("{ myInvitations { id } }", {}),
    "auditLog": lambda c: ("{ auditLog(first: 1) { nextBefore } }", {}),
    "scopeUsage": lambda c: ("{ scopeUsage { scope } }", {}),
    "exportMyData": lambda c: ("{ exportMyData }", {}),
    "retentionPolicy": lambda c: ("{ retentionPolicy { executionDays } }", {}),
    "deleteMyAccount": lambda c: ('mutation { deleteMyAccount(password: "not-the-password") }', {}),
    "setRetentionPolicy": lambda c: ("mutation { setRetentionPolicy(executionDays: null) { executionDays } }", {}),
    "signUp": lambda c: ("mutation($e: String!) { signUp(email: $e, password: \"a-long-password\") { id } }", {"e": f"g{uuid.uuid4().hex[:8]}@example.com"}),
    "refreshToken": lambda c: ('mutation { refreshToken(refreshToken: "psrt_x") { accessToken } }', {}),
    "logIn": lambda c: ('mutation { logIn(email: "nobody@example.com", password: "wrong-password") { accessToken } }', {}),
    "logOut": lambda c: ('mutation { logOut(refreshToken: "psrt_x") }', {}),
    "changePassword": lambda c: ('mutation { changePassword(currentPassword: "not-it-at-all", newPassword: "another-password") { sessionsRevoked } }', {}),
    "createApiKey": lambda c: ("mutation { createApiKey { id } }", {}),
    "revokeApiKey": lambda c: ("mutation($id: ID!) { revokeApiKey(id: $id) { id } }", {"id": str(c.key)}),
    "createAgent": lambda c: ('mutation { createAgent(input: {name: "m", config: {model: "scripted"}}) { agent { id } } }', {}),
    "updateAgent": lambda c: ('mutation($id: ID!) { updateAgent(id: $id, input: {name: "r"}) { agent { id } } }', {"id": str(c.agent)}),
    "deleteAgent": lambda c: ("mutation($id: ID!) { deleteAgent(id: $id) }", {"id": str(c.agent)}),
    "registerTool": lambda c: ("mutation($t: JSON!) { registerTool(input: $t) { toolId } }", {"t": tool_body(c.new_tool)}),
    "updateTool": lambda c: ("mutation($id: String!, $t: JSON!) { updateTool(id: $id, input: $t) { toolId } }", {"id": c.tool, "t": tool_body(c.tool)}),
    "deleteTool": lambda c: ("mutation($id: String!) { deleteTool(id: $id) }", {"id": c.tool}),
    "shareTool": lambda c: ('mutation($id: String!) { shareTool(id: $id, role: "viewer") { id } }', {"id": c.tool}),
    "unshareTool": lambda c: ("mutation($id: String!) { unshareTool(id: $id) }", {"id": c.tool}),
    "executeAgent": lambda c: ('mutation($a: ID!) { executeAgent(agentId: $a, input: "hi", parameters: {wait: false}) { id } }', {"a": str(c.agent)}),
    "decideApproval": lambda c: ('mutation($id: ID!) { decideApproval(id: $id, decision: "approve") { id } }', {"id": str(c.execution)}),
    "cancelExecution": lambda c: ("mutation($id: ID!) { cancelExecution(id: $id) { id } }", {"id": str(c.execution)}),
    "disconnect": lambda c: ('mutation { disconnect(provider: "google") { provider } }', {}),
    "createOrganisation": lambda c: ('mutation { createOrganisation(name: "team") { id } }', {}),
    "switchOrganisation": lambda c: ("mutation($o: ID!) { switchOrganisation(organisationId: $o) { accessToken } }", {"o": str(c.world.team)}),
    "inviteMember": lambda c: ('mutation($e: String!) { inviteMember(email: $e, role: "viewer") { id } }', {"e": c.world.new_person(join=False).principal.email}),
    "revokeInvitation": lambda c: ("mutation($id: ID!) { revokeInvitation(id: $id) }", {"id": str(uuid.uuid4())}),
    "acceptInvitation": lambda c: ("mutation($id: ID!, $s: String!) { acceptInvitation(id: $id, secret: $s) { id } }", {"id": str(uuid.uuid4()), "s": "not-the-secret"}),
    "declineInvitation": lambda c: ("mutation($id: ID!) { declineInvitation(id: $id) }", {"id": str(uuid.uuid4())}),
    "setMemberRole": lambda c: ('mutation($u: ID!) { setMemberRole(userId: $u, role: "member") { userId } }', {"u": str(c.member)}),
    "removeMember": lambda c: ("mutation($u: ID!) { removeMember(userId: $u) }", {"u": str(c.member)}),
    "agentVersions": lambda c: ("query($a: ID!) { agentVersions(agentId: $a) { version } }", {"a": str(c.agent)}),
    "agentVersion": lambda c: ("query($a: ID!) { agentVersion(agentId: $a, version: 1) { version } }", {"a": str(c.agent)}),
    "agentVersionDiff": lambda c: ("query($a: ID!) { agentVersionDiff(agentId: $a, fromVersion: 1, toVersion: 1) { toVersion } }", {"a": str(c.agent)}),
    "threads": lambda c: ("query($a: ID!) { threads(agentId: $a) { threadId } }", {"a": str(c.agent)}),
    "thread": lambda c: ('query($a: ID!) { thread(agentId: $a, threadId: "nothing") { status } }', {"a": str(c.agent)}),
    "rollbackAgent": lambda c: ("mutation($a: ID!) { rollbackAgent(agentId: $a, version: 1) { agent { id } } }", {"a": str(c.agent)}),
    "deleteThread": lambda c: ('mutation($a: ID!) { deleteThread(agentId: $a, threadId: "nothing") }', {"a": str(c.agent)}),
    "schedules": lambda c: ("query($a: ID!) { schedules(agentId: $a) { id } }", {"a": str(c.agent)}),
    "createSchedule": lambda c: ('mutation($a: ID!) { createSchedule(agentId: $a, cron: "0 9 * * *", input: "hi") { id } }', {"a": str(c.agent)}),
    "pauseSchedule": lambda c: ("mutation($a: ID!, $s: ID!) { pauseSchedule(agentId: $a, scheduleId: $s) { id } }", {"a": str(c.agent), "s": str(uuid.uuid4())}),
    "resumeSchedule": lambda c: ("mutation($a: ID!, $s: ID!) { resumeSchedule(agentId: $a, scheduleId: $s) { id } }", {"a": str(c.agent), "s": str(uuid.uuid4())}),
    "deleteSchedule": lambda c: ("mutation($a: ID!, $s: ID!) { deleteSchedule(agentId: $a, scheduleId: $s) }", {"a": str(c.agent), "s": str(uuid.uuid4())}),
    "shareAgent": lambda c: ('mutation($id: ID!) { shareAgent(id: $id, role: "viewer") { id } }', {"id": str(c.agent)}),
    "attachConnection": lambda c: ('mutation($a: ID!) { attachConnection(agentId: $a, provider: "google") { provider } }', {"a": str(c.agent)}),
    "detachConnection": lambda c: ('mutation($a: ID!) { detachConnection(agentId: $a, provider: "google") }', {"a": str(c.agent)}),
    "knowledge": lambda c: ("query($a: ID!) { knowledge(agentId: $a) { id } }", {"a": str(c.agent)}),
    "searchKnowledge": lambda c: ('query($a: ID!) { searchKnowledge(agentId: $a, query: "anything") { id } }', {"a": str(c.agent)}),
    "addKnowledge": lambda c: ('mutation($a: ID!) { addKnowledge(agentId: $a, name: "n", text: " ") { id } }', {"a": str(c.agent)}),
    "addKnowledgeFile": lambda c: ('mutation($a: ID!) { addKnowledgeFile(agentId: $a, filename: "x.exe", contentBase64: "eA==") { id } }', {"a": str(c.agent)}),
    "deleteKnowledge": lambda c: ('mutation($a: ID!) { deleteKnowledge(agentId: $a, documentId: "nothing") }', {"a": str(c.agent)}),
    "executionEvents": lambda c: ("subscription($id: ID!) { executionEvents(id: $id) { seq } }", {"id": str(c.execution)}),
}  # fmt: skip

ID_TAKING = {
    "api_keys.revoke", "members.set_role", "members.remove",
    "executions.read", "executions.events", "executions.cancel", "executions.decide_approval",
}  # fmt: skip


def graphql_fields() -> dict[str, str]:
    """Every root field's GraphQL name and the operation its permission names."""
    fields: dict[str, str] = {}
    for root in (Query, Mutation, Subscription):
        definition = get_object_definition(root, strict=True)
        for found in definition.fields:
            name = found.graphql_name or _camel(found.python_name)
            operation = operation_of(list(found.permission_classes))
            assert operation is not None, f"GraphQL field {name} names no policy operation"
            fields[name] = operation
    return fields


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def relations(operation: str) -> tuple[str, ...]:
    if rule(operation).resource and operation.startswith("tools."):
        # a custom tool is its owner's in every organisation: no `own_other_org` case
        return tuple(r for r in RESOURCE_RELATIONS if r != "own_other_org")
    if rule(operation).resource:
        return RESOURCE_RELATIONS
    return ID_RELATIONS if operation in ID_TAKING else ("owner",)


def test_every_operation_of_both_surfaces_is_in_the_policy_table_and_the_matrix() -> None:
    rest_ops = {endpoint.op for endpoint in ENDPOINTS}
    for endpoint in ENDPOINTS:
        assert endpoint.op in POLICY, f"{endpoint.method} {endpoint.path}: no policy entry"
        assert (endpoint.method, endpoint.path) in REST, f"{endpoint.path}: no matrix request"
        assert endpoint.auth == (not rule(endpoint.op).public), endpoint.path
    fields = graphql_fields()
    assert set(fields) == set(GRAPHQL), set(fields) ^ set(GRAPHQL)
    unused = (
        set(POLICY) - rest_ops - set(fields.values()) - set(MCP_OPERATIONS) - SERVICE_OPERATIONS
    )
    assert not unused, f"policy entries no surface names: {sorted(unused)}"


def _sent_ids(case: Case) -> list[str]:
    cached = case.__dict__  # only what this request made (and so named)
    return [str(cached[name]) for name in ("agent", "execution", "member", "key", "tool")
            if name in cached]  # fmt: skip


def _rest_answer(world: World, headers: dict[str, str], request: Request) -> tuple[int, Any]:
    method, path, body = request
    response = world.client.request(method, path, json=body, headers=headers)
    try:
        payload = response.json()
    except ValueError:
        payload = None
    return response.status_code, payload


def test_rest_matrix(client: TestClient) -> None:
    world = World(client)
    mismatches: list[str] = []
    tally: Counter[str] = Counter()
    for endpoint in ENDPOINTS:
        found = rule(endpoint.op)
        for role in ROLES:
            caller = world.callers[role]
            for relation in relations(endpoint.op):
                case = Case(world, caller, relation, resource=found.resource)
                request = REST[(endpoint.method, endpoint.path)](case)
                status, payload = _rest_answer(world, caller.headers, request)
                error = payload.get("error", {}) if isinstance(payload, dict) else {}
                if not isinstance(error, dict):
                    error = {}
                got = observed(status, error.get("code"), str(error.get("message", "")),
                               _sent_ids(case), public=found.public)  # fmt: skip
                want = expected(found, role, relation)
                tally[got] += 1
                if got != want:
                    mismatches.append(
                        f"{endpoint.method} {endpoint.path} [{endpoint.op}] {role}/{relation}: "
                        f"want {want}, got {got} ({status} {payload})"
                    )
    assert not mismatches, "\n".join(mismatches)
    assert min(tally[answer] for answer in ("allowed", "denied", "hidden")) >= 10, tally


def _graphql_answer(
    world: World, headers: dict[str, str], field: str, document: str, variables: dict[str, Any]
) -> tuple[int, str | None, str]:
    if document.startswith("subscription"):
        with world.client.websocket_connect(
            "/graphql", subprotocols=["graphql-transport-ws"]
        ) as ws:
            ws.send_json({"type": "connection_init", "payload": headers})
            assert ws.receive_json()["type"] == "connection_ack"
            ws.send_json({"id": "1", "type": "subscribe",
                          "payload": {"query": document, "variables": variables}})  # fmt: skip
            message = ws.receive_json()
            ws.send_json({"id": "1", "type": "complete"})
        errors = (
            message.get("payload")
            if message["type"] == "error"
            else (message.get("payload", {}).get("errors"))
        )
    else:
        response = world.client.post(
            "/graphql", json={"query": document, "variables": variables}, headers=headers
        )
        errors = response.json().get("errors")
    if not errors:
        return 200, None, ""
    first = errors[0]
    code = (first.get("extensions") or {}).get("code")
    status = {"NOT_FOUND": 404, "TOOL_NOT_FOUND": 404, "UNAUTHENTICATED": 401}.get(code or "", 400)
    return status, code, str(first.get("message", ""))


def test_graphql_matrix(client: TestClient) -> None:
    world = World(client)
    mismatches: list[str] = []
    tally: Counter[str] = Counter()
    for field, operation in graphql_fields().items():
        found = rule(operation)
        for role in ROLES:
            caller = world.callers[role]
            for relation in relations(operation):
                case = Case(world, caller, relation, resource=found.resource)
                document, variables = GRAPHQL[field](case)
                status, code, message = _graphql_answer(
                    world, caller.headers, field, document, variables
                )
                got = observed(status, code, message, _sent_ids(case), public=found.public)
                want = expected(found, role, relation)
                tally[got] += 1
                if got != want:
                    mismatches.append(
                        f"{field} [{operation}] {role}/{relation}: want {want}, got {got} "
                        f"({code} {message})"
                    )
    assert not mismatches, "\n".join(mismatches)
    assert min(tally[answer] for answer in ("allowed", "denied", "hidden")) >= 10, tally


@pytest.mark.parametrize("role", ROLES)
def test_expected_answers_follow_the_table_for_a_shared_resource(role: str) -> None:
    """The matrix's own reading of the table, checked on two rules it must tell apart."""
    update, read = rule("agents.update"), rule("agents.read")
    assert expected(read, role, "shared_viewer") == "allowed"
    assert expected(update, role, "shared_admin") == ("allowed" if role == "admin" else "denied")
    assert expected(update, role, "other_org") == ("denied" if role == "viewer" else "hidden")
