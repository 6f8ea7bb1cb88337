"""The REST endpoints, declared once: Starlette routes and the OpenAPI document both come from here."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from pasar_core.accounts.api_key_store import ApiKeyRequest
from pasar_core.accounts.service import (
    Credentials,
    PasswordChange,
    RefreshRequest,
    SwitchRequest,
)
from pasar_core.agents.config import AgentInput, AgentPatch
from pasar_core.agents.secrets import SecretValue
from pasar_core.agents.service import SharingInput
from pasar_core.authz.checks import require
from pasar_core.authz.policy import rule
from pasar_core.custom_tools.definition import ToolDefinition
from pasar_core.executions.decisions import ApprovalDecision
from pasar_core.executions.requests import ExecuteRequest
from pasar_core.memory.knowledge import KnowledgeFile, KnowledgeQuery, KnowledgeText
from pasar_core.organisations.invitations import AcceptInput, InvitationInput
from pasar_core.organisations.members import RoleInput
from pasar_core.organisations.store import OrganisationInput
from pasar_core.privacy.erasure import ErasureRequest
from pasar_core.privacy.retention import RetentionInput
from pasar_core.rate_limits import RouteClass
from pasar_core.sandboxed_plugins.service import SandboxedInstall
from pasar_core.schedules.service import ScheduleInput, ScheduleView
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pasar.rest import (
    accounts,
    agent_history,
    agents,
    audit,
    consent,
    executions,
    health,
    knowledge,
    organisations,
    plugins,
    privacy,
    schedules,
    tools,
)
from pasar.rest import oauth as oauth_routes
from pasar.rest.content_types import METHODS as JSON_METHODS
from pasar.rest.content_types import exempt, json_only
from pasar.rest.files import FileListOut, download_file, list_files
from pasar.rest.idempotency import idempotent
from pasar.rest.limits import Handler, rate_limited, route_class
from pasar.rest.models import (
    AgentListOut,
    AgentOut,
    AgentSavedOut,
    ApiKeyListOut,
    CreatedApiKeyOut,
    CustomToolSavedOut,
    ErrorOut,
    ExecutionListOut,
    ExecutionOut,
    HealthOut,
    PasswordChangedOut,
    SandboxedPluginListOut,
    SandboxedPluginOut,
    SecretNamesOut,
    StrategyListOut,
    ThreadListOut,
    ThreadTurnsOut,
    TokenOut,
    ToolDetailOut,
    ToolListOut,
    UserOut,
    VersionDiffOut,
    VersionListOut,
    VersionOut,
    WebhookSecretOut,
)
from pasar.rest.requests import caller


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    status: int = 200
    response: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    auth: bool = True
    tag: str = "agents"
    query: dict[str, str] = field(default_factory=dict)
    throttled: bool = False
    """Counts against the log-in budgets (429 RATE_LIMITED with Retry-After)."""
    op: str = field(kw_only=True)
    """The operation's name in the policy table (pasar_core.authz.policy): who may call it."""
    idempotent: bool = False
    """Takes an `Idempotency-Key` header (pasar.rest.idempotency)."""
    also: tuple[int, ...] = ()
    """Other success statuses it answers (202: a run still going)."""
    errors: tuple[int, ...] = ()
    """Error statuses it answers beyond those every endpoint of its kind does."""
    html: bool = False
    """Answers HTML pages (a browser's consent pages), errors included."""
    form: tuple[str, ...] = ()
    """Fields of an `application/x-www-form-urlencoded` body (a browser's form)."""

    @property
    def limit(self) -> RouteClass | None:
        """The rate-limit class it counts against (pasar.rest.limits)."""
        return route_class(self.method, self.path)

    def routed_handler(self) -> Handler:
        """The handler behind, in the order a request meets them: its policy entry (401,
        403 before anything else: a refused caller is not charged and no body is read), its
        rate limit (429), the JSON content type of its body (415) and its idempotency key
        (when it creates: a replay is answered only to a caller the policy let in)."""
        handler = self.handler
        if self.idempotent:
            handler = idempotent(handler, f"{self.method} {self.path}")
        if self.method in JSON_METHODS and not exempt(self.path):
            handler = json_only(handler, signed_in=self.auth)
        if self.limit is not None:
            handler = rate_limited(handler, self.limit, signed_in=self.auth)
        return guarded(self, handler)


ENDPOINTS = (
    Endpoint("POST", "/auth/signup", accounts.sign_up, "Create an account", 201, UserOut,
             Credentials, auth=False, tag="accounts", op="accounts.sign_up", errors=(409,)),
    Endpoint("POST", "/auth/token", accounts.issue_token, "Log in: email and password -> access token",
             200, TokenOut, Credentials, auth=False, tag="accounts", throttled=True, op="accounts.log_in", errors=(401,)),
    Endpoint("POST", "/auth/refresh", accounts.refresh,
             "Spend a refresh token for a new access token and the next refresh token", 200,
             TokenOut, RefreshRequest, auth=False, tag="accounts", op="accounts.refresh", errors=(401,)),
    Endpoint("POST", "/auth/logout", accounts.log_out,
             "End a session: its refresh tokens and the access tokens issued with them", 204,
             body=RefreshRequest, auth=False, tag="accounts", op="accounts.log_out"),
    Endpoint("POST", "/auth/password", accounts.change_password,
             "Change your password: every session and access token of yours is revoked, and you "
             "get a new session", 200, PasswordChangedOut, PasswordChange, tag="accounts",
             throttled=True, op="accounts.change_password"),
    Endpoint("POST", "/api-keys", accounts.create_api_key,
             "Create an API key, optionally expiring (the key is shown once)", 201,
             CreatedApiKeyOut, ApiKeyRequest, tag="accounts", op="api_keys.create"),
    Endpoint("GET", "/api-keys", accounts.list_api_keys,
             "Your API keys, newest first: prefix, name, status and dates (never the key)", 200,
             ApiKeyListOut, tag="accounts", query={"limit": "integer", "offset": "integer"}, op="api_keys.list"),
    Endpoint("DELETE", "/api-keys/{key_id}", accounts.revoke_api_key,
             "Revoke one of your API keys (it is refused from now on)", 204, tag="accounts", op="api_keys.revoke"),
    Endpoint("GET", "/organisations", organisations.list_organisations,
             "Your organisations with your role in each, and the one this credential acts in",
             200, organisations.OrganisationListOut, tag="organisations",
             op="organisations.list"),
    Endpoint("POST", "/organisations", organisations.create_organisation,
             "Create an organisation (you are its admin; switch to it to act in it)", 201,
             organisations.OrganisationOut, OrganisationInput, tag="organisations",
             op="organisations.create"),
    Endpoint("POST", "/auth/switch", organisations.switch_organisation,
             "A new session acting in another of your organisations", 200, TokenOut,
             SwitchRequest, tag="organisations", op="accounts.switch_organisation", errors=(404,)),
    Endpoint("GET", "/members", organisations.list_members,
             "The members of the organisation you act in, with their roles", 200,
             organisations.MemberListOut, tag="organisations", op="members.list"),
    Endpoint("POST", "/invitations", organisations.invite,
             "Admins (of a team organisation): invite an email address with a role (the same "
             "answer whether or not it is registered); the answer shows the invitation's "
             "secret once: the invitee needs it to accept", 201,
             organisations.CreatedInvitationOut, InvitationInput, tag="organisations",
             op="members.invite", errors=(409,)),
    Endpoint("GET", "/invitations", organisations.list_invitations,
             "Admins: a page of the organisation's pending invitations (`limit`, `offset`)",
             200,
             organisations.InvitationListOut, tag="organisations",
             query={"limit": "integer", "offset": "integer"}, op="members.invitations"),
    Endpoint("DELETE", "/invitations/{invitation_id}", organisations.revoke_invitation,
             "Admins: withdraw a pending invitation", 204, tag="organisations",
             op="members.revoke_invitation"),
    Endpoint("GET", "/me/invitations", organisations.my_invitations,
             "A session's: a page (`limit`, `offset`) of your pending invitations made while "
             "your account existed", 200,
             organisations.ReceivedInvitationListOut, tag="organisations",
             query={"limit": "integer", "offset": "integer"}, op="invitations.mine"),
    Endpoint("POST", "/me/invitations/{invitation_id}/accept", organisations.accept_invitation,
             "Join the organisation with the invitation's role: its `secret` and a session "
             "(not an API key) of the invited address", 200, organisations.OrganisationOut,
             AcceptInput, tag="organisations", op="invitations.accept"),
    Endpoint("POST", "/me/invitations/{invitation_id}/decline",
             organisations.decline_invitation, "Decline an invitation (a session's)", 204,
             tag="organisations", op="invitations.decline"),
    Endpoint("PUT", "/members/{user_id}", organisations.set_member_role,
             "Admins: change a member's role (never the last admin's); a demotion ends their "
             "sessions in this organisation", 200,
             organisations.MemberOut, RoleInput, tag="organisations", op="members.set_role",
             errors=(409,)),
    Endpoint("DELETE", "/members/{user_id}", organisations.remove_member,
             "Admins: remove a member (never the last admin); their sessions in this "
             "organisation end", 204, tag="organisations", op="members.remove",
             errors=(409,)),
    Endpoint("GET", "/tools", tools.list_tools,
             "The catalogue: installed and sandboxed plugins' tools, and (signed in) your custom "
             "tools", 200, ToolListOut, auth=False, tag="tools", query={"family": "string"}, op="tools.catalogue"),
    Endpoint("POST", "/tools", tools.register_tool,
             "Register a custom tool (python: runs in a sandbox; http: one guarded request)",
             201, CustomToolSavedOut, ToolDefinition, tag="tools", op="tools.register",
             idempotent=True),
    Endpoint("GET", "/tools/{tool_id}", tools.get_tool,
             "One tool; for your custom tools (id or id@version) with their definition", 200,
             ToolDetailOut, auth=False, tag="tools", op="tools.read"),
    Endpoint("PUT", "/tools/{tool_id}", tools.update_tool,
             "A new version of your custom tool (the whole definition)", 200,
             CustomToolSavedOut, ToolDefinition, tag="tools", op="tools.update"),
    Endpoint("DELETE", "/tools/{tool_id}", tools.delete_tool,
             "Delete your custom tool and all its versions (refused while agents use it)", 204,
             tag="tools", op="tools.delete"),
    Endpoint("PUT", "/tools/{tool_id}/sharing", tools.share_tool,
             "Share your custom tool with the organisation you act in, members acting on it "
             "with at most this role (viewer: they see it; member or admin: their agents may "
             "use it), or make it private (null)", 200, ToolDetailOut, SharingInput,
             tag="tools", op="tools.share"),
    Endpoint("DELETE", "/tools/{tool_id}/sharing", tools.unshare_tool,
             "Make a custom tool shared with your organisation private again (its owner, or "
             "an admin of the organisation); agents of other members naming it stop running it",
             204, tag="tools", op="tools.unshare", errors=(422,)),
    Endpoint("POST", "/plugins/sandboxed", plugins.install_plugin,
             "Admins: install an untrusted plugin wheel into a sandbox image (a sandbox worker "
             "builds it and reads its manifest)", 201, SandboxedPluginOut, SandboxedInstall,
             tag="plugins", op="plugins.install"),
    Endpoint("GET", "/plugins/sandboxed", plugins.list_plugins, "Admins: sandboxed plugins",
             200, SandboxedPluginListOut, tag="plugins", op="plugins.list"),
    Endpoint("DELETE", "/plugins/sandboxed/{name}", plugins.remove_plugin,
             "Admins: remove a sandboxed plugin (refused while agents use its tools)", 204,
             tag="plugins", op="plugins.remove"),
    Endpoint("POST", "/agents", agents.create_agent, "Create an agent", 201, AgentSavedOut,
             AgentInput, op="agents.create", idempotent=True),
    Endpoint("GET", "/strategies", agents.list_strategies,
             "The installed reasoning strategies (what config.strategy may name)", 200,
             StrategyListOut, auth=False, op="agents.strategies"),
    Endpoint("GET", "/agents", agents.list_agents, "List your agents", 200, AgentListOut,
             query={"limit": "integer", "offset": "integer"}, op="agents.list"),
    Endpoint("GET", "/agents/{agent_id}", agents.get_agent, "One of your agents", 200, AgentOut, op="agents.read"),
    Endpoint("PUT", "/agents/{agent_id}", agents.update_agent,
             "Update an agent (the fields given replace the stored ones)", 200, AgentSavedOut,
             AgentPatch, op="agents.update"),
    Endpoint("DELETE", "/agents/{agent_id}", agents.delete_agent, "Delete an agent", 204, op="agents.delete"),
    Endpoint("PUT", "/agents/{agent_id}/sharing", organisations.share_agent,
             "Share your agent with its organisation with a role, or make it private (null)",
             200, AgentOut, SharingInput, op="agents.share"),
    Endpoint("GET", "/agents/{agent_id}/versions", agent_history.list_versions,
             "The agent's config versions, newest first", 200, VersionListOut,
             query={"limit": "integer", "offset": "integer"}, op="agents.versions.list"),
    Endpoint("GET", "/agents/{agent_id}/versions/{n}", agent_history.get_version,
             "One config version: the agent's name, tools and config then", 200, VersionOut,
             op="agents.versions.read"),
    Endpoint("GET", "/agents/{agent_id}/versions/{a}/diff/{b}", agent_history.diff_versions,
             "What changed from version a to version b: added, removed and changed paths", 200,
             VersionDiffOut, op="agents.versions.read"),
    Endpoint("POST", "/agents/{agent_id}/versions/{n}/rollback", agent_history.rollback,
             "Make the agent what version n was, as a new version", 200, AgentSavedOut,
             op="agents.versions.rollback"),
    Endpoint("GET", "/agents/{agent_id}/threads", agent_history.list_threads,
             "Your threads on the agent, most recently used first", 200, ThreadListOut,
             query={"limit": "integer", "offset": "integer"}, op="agents.threads.list"),
    Endpoint("GET", "/agents/{agent_id}/threads/{thread_id}", agent_history.read_thread,
             "One of your threads: its turns, oldest first", 200, ThreadTurnsOut,
             query={"limit": "integer", "offset": "integer"}, op="agents.threads.read"),
    Endpoint("DELETE", "/agents/{agent_id}/threads/{thread_id}", agent_history.delete_thread,
             "Delete one of your threads: its runs go, and its memory with them", 204,
             op="agents.threads.delete", errors=(409,)),
    Endpoint("PUT", "/agents/{agent_id}/connections/{provider}", organisations.attach_connection,
             "Attach your provider grant to the agent: runs of it by other members use it", 200,
             organisations.AttachedConnectionOut, tag="connections",
             op="agents.connections.attach"),
    Endpoint("DELETE", "/agents/{agent_id}/connections/{provider}",
             organisations.detach_connection,
             "Detach the grant attached to the agent (who attached it, or the owner)", 204,
             tag="connections", op="agents.connections.detach"),
    Endpoint("GET", "/agents/{agent_id}/secrets", agents.list_secrets,
             "Names of the agent's secrets (values are never returned)", 200, SecretNamesOut, op="agents.secrets.list"),
    Endpoint("PUT", "/agents/{agent_id}/secrets/{name}", agents.put_secret,
             "Set a secret a tool family uses (stored encrypted)", 204, body=SecretValue, op="agents.secrets.write"),
    Endpoint("DELETE", "/agents/{agent_id}/secrets/{name}", agents.delete_secret,
             "Delete a secret", 204, op="agents.secrets.write"),
    Endpoint("POST", "/agents/{agent_id}/knowledge", knowledge.add_text,
             "Teach the agent a document (text): chunked and embedded for memory 'vector'", 201,
             knowledge.KnowledgeDocumentOut, KnowledgeText, tag="knowledge",
             op="agents.knowledge.add", errors=(413,)),
    Endpoint("POST", "/agents/{agent_id}/knowledge/files", knowledge.add_file,
             "Teach the agent a file (PDF, DOCX, PPTX, XLSX, CSV, TXT; base64)", 201,
             knowledge.KnowledgeDocumentOut, KnowledgeFile, tag="knowledge",
             op="agents.knowledge.add", errors=(413, 415)),
    Endpoint("GET", "/agents/{agent_id}/knowledge", knowledge.list_documents,
             "The agent's knowledge documents", 200, knowledge.KnowledgeListOut, tag="knowledge",
             op="agents.knowledge.list"),
    Endpoint("POST", "/agents/{agent_id}/knowledge/search", knowledge.search,
             "The chunks of the agent's knowledge and past exchanges nearest a query", 200,
             knowledge.KnowledgeSearchOut, KnowledgeQuery, tag="knowledge",
             op="agents.knowledge.search"),
    Endpoint("DELETE", "/agents/{agent_id}/knowledge/{document_id}", knowledge.delete_document,
             "Forget one document (all its chunks)", 204, tag="knowledge",
             op="agents.knowledge.delete"),
    Endpoint("POST", "/agents/{agent_id}/schedules", schedules.create_schedule,
             "Schedule runs of the agent as you: a cron expression in an IANA timezone, and "
             "the input (and thread) of each run", 201, ScheduleView, ScheduleInput,
             tag="schedules", op="agents.schedules.create", idempotent=True, errors=(409,)),
    Endpoint("GET", "/agents/{agent_id}/schedules", schedules.list_schedules,
             "Your schedules on the agent, oldest first", 200, schedules.ScheduleListOut,
             tag="schedules", op="agents.schedules.list"),
    Endpoint("POST", "/agents/{agent_id}/schedules/{schedule_id}/pause",
             schedules.pause_schedule, "Pause one of your schedules: no runs until resumed",
             200, ScheduleView, tag="schedules", op="agents.schedules.pause"),
    Endpoint("POST", "/agents/{agent_id}/schedules/{schedule_id}/resume",
             schedules.resume_schedule,
             "Resume one of your schedules from its next tick (ticks missed while paused do "
             "not fire)", 200, ScheduleView, tag="schedules",
             op="agents.schedules.resume"),
    Endpoint("DELETE", "/agents/{agent_id}/schedules/{schedule_id}", schedules.delete_schedule,
             "Delete one of your schedules (the runs it fired stay)", 204, tag="schedules",
             op="agents.schedules.delete"),
    Endpoint("POST", "/agents/{agent_id}/execute", executions.execute,
             "Run an agent: 200 with the finished execution, or 202 with its state so far", 200,
             ExecutionOut, ExecuteRequest, tag="executions", op="agents.execute",
             idempotent=True, also=(202,), errors=(503,)),
    Endpoint("GET", "/agents/{agent_id}/executions", executions.list_executions,
             "An agent's executions, newest first", 200, ExecutionListOut, tag="executions",
             query={"first": "integer", "after": "string"}, op="agents.executions.list"),
    Endpoint("GET", "/executions/{execution_id}", executions.get_execution, "One execution", 200,
             ExecutionOut, tag="executions", op="executions.read"),
    Endpoint("GET", "/executions/{execution_id}/events", executions.events,
             "Server-sent events of a run (resume with Last-Event-ID)", 200, tag="executions", op="executions.events"),
    Endpoint("POST", "/executions/{execution_id}/cancel", executions.cancel,
             "Cancel a queued or running execution", 200, ExecutionOut, tag="executions", op="executions.cancel",
             errors=(409,)),
    Endpoint("POST", "/executions/{execution_id}/approval", executions.decide_approval,
             "Approve or reject the tool call a paused run waits on; the run resumes", 200,
             ExecutionOut, ApprovalDecision, tag="executions", op="executions.decide_approval",
             also=(202,), errors=(409,)),
    Endpoint("GET", "/webhook-secret", executions.get_webhook_secret,
             "The secret that signs your webhook deliveries", 200, WebhookSecretOut,
             tag="executions", op="executions.webhook_secret"),
    Endpoint("GET", "/audit", audit.list_audit,
             "The audit log, newest first: admins read their organisation's rows, the operator "
             "every row (filters: organisation_id, actor_id, action or 'prefix.', target_type, "
             "target_id, since, until; pages: limit, before_id)", 200,
             audit.AuditPageOut, tag="audit", op="audit.list", errors=(404, 422),
             query={"organisation_id": "string", "actor_id": "string", "action": "string", "target_type": "string",
                    "target_id": "string", "since": "string", "until": "string",
                    "before_id": "integer", "limit": "integer"}),
    Endpoint("GET", "/audit/scope-usage", audit.export_scope_usage,
             "Which provider scopes which agents' tool calls used, with counts and first/last "
             "use (format=json or csv; admins: their organisation's, the operator: all)", 200,
             audit.ScopeUsageListOut, tag="audit", op="audit.scope_usage", errors=(404, 422),
             query={"organisation_id": "string", "provider": "string", "since": "string", "until": "string",
                    "format": "string"}),
    Endpoint("GET", "/me/export", privacy.export_my_data,
             "Everything pasar holds about you, as one JSON document (an attachment)", 200,
             tag="privacy", op="privacy.export"),
    Endpoint("DELETE", "/me", privacy.delete_my_account_route,
             "Erase your account and everything of yours (your password confirms it); "
             "LAST_ADMIN while you are the last admin of an organisation with other members",
             204, body=ErasureRequest, tag="privacy", op="privacy.erase"),
    Endpoint("GET", "/retention", privacy.get_retention,
             "The retention policy of the organisation you act in", 200, RetentionInput,
             tag="privacy", op="retention.read"),
    Endpoint("PUT", "/retention", privacy.put_retention,
             "Admins: days the organisation keeps finished runs and their events, its agents' "
             "knowledge and (a personal organisation's) files; fields left out keep their value "
             "(null: keep)",
             200, RetentionInput, RetentionInput, tag="privacy", op="retention.set"),
    Endpoint("GET", "/healthz", health.healthz, "Liveness", 200, HealthOut, auth=False,
             tag="operations", op="operations.health"),
    Endpoint("GET", "/readyz", health.readyz, "Readiness (database reachable, migrations applied)", 200, HealthOut,
             auth=False, tag="operations", op="operations.health"),
    Endpoint("GET", "/files", list_files, "List your files (tool outputs), sorted by path", 200,
             FileListOut, tag="files", query={"prefix": "string", "limit": "integer"}, op="files.list"),
    Endpoint("GET", "/files/{path:path}", download_file,
             "Download one of your files (streamed, as an attachment)", 200, tag="files", op="files.download"),
    Endpoint("GET", "/auth/{provider}/start", consent.start_page,
             "Consent link (every auth_url): names the pasar account and asks its password "
             "(HTML page)", 200, auth=False, tag="connections", query={"state": "string"}, op="consent.start",
             html=True, errors=(404, 429)),
    Endpoint("POST", "/auth/{provider}/start", consent.start,
             "Sign-in form of a consent link: binds this browser (HttpOnly cookie) and "
             "redirects (303) to the provider", 303, auth=False, tag="connections", op="consent.start",
             html=True, form=("state", "form_token", "password"), errors=(401, 403, 404, 413, 415, 429)),
    Endpoint("GET", "/auth/{provider}/callback", consent.callback,
             "OAuth consent callback (browser redirect): only in the browser that started the "
             "consent; exchanges the code, answers an HTML page",
             200, auth=False, tag="connections",
             query={"code": "string", "state": "string", "error": "string"}, op="consent.callback",
             html=True, errors=(403, 404, 409, 429)),
    Endpoint("GET", "/connections", oauth_routes.list_connections,
             "Your provider grants: scopes and health (never tokens)", 200,
             oauth_routes.ConnectionListOut, tag="connections", op="connections.list"),
    Endpoint("DELETE", "/connections/{provider}", oauth_routes.disconnect,
             "Revoke a provider grant at the provider and delete its tokens", 200,
             oauth_routes.DisconnectedOut, tag="connections", op="connections.disconnect"),
)  # fmt: skip

ERROR_STATUSES = {
    400: "Malformed request",
    401: "Missing, invalid or expired credentials",
    403: "Forbidden: your role does not allow it (INSUFFICIENT_ROLE, ROLE_ESCALATION)",
    404: "Not found (or not yours)",
    409: "Conflict: the id is taken or in use, the state does not allow it, or the "
    "Idempotency-Key's first request is still running",
    413: "Body too large",
    415: "Body is not JSON",
    422: "Body does not fit the schema",
    429: "Too many attempts (see Retry-After)",
    503: "Unavailable: every database connection is busy, the server is draining, or a part it "
    "depends on is down (see Retry-After)",
}
SUCCESS_STATUSES = {202: "Accepted: the run goes on (its state so far)"}
HTML = {"text/html": {"schema": {"type": "string"}}}


def _operation(endpoint: Endpoint, components: dict[str, Any]) -> dict[str, Any]:
    def ref(model: type[BaseModel]) -> dict[str, str]:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(schema.pop("$defs", {}))
        components[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    success: dict[str, Any] = {"description": endpoint.summary}
    if endpoint.response is not None:
        success["content"] = {"application/json": {"schema": ref(endpoint.response)}}
    elif endpoint.html and endpoint.status == 200:
        success["content"] = HTML
    responses: dict[str, Any] = {str(endpoint.status): success}
    for status in endpoint.also:
        responses[str(status)] = {**success, "description": SUCCESS_STATUSES[status]}
    error_content = HTML if endpoint.html else {"application/json": {"schema": ref(ErrorOut)}}
    reads_credentials = endpoint.auth or endpoint.path.startswith("/tools")  # optional there
    for status, description in ERROR_STATUSES.items():
        relevant = (
            (status == 401 and reads_credentials)
            or (status in (413, 415, 422) and endpoint.body is not None)
            or (status == 404 and "{" in endpoint.path)
            or (status == 429 and (endpoint.throttled or endpoint.limit is not None))
            or (status == 409 and endpoint.tag in ("tools", "plugins") and endpoint.method != "GET")
            or (status == 409 and endpoint.idempotent)
            or (status == 403 and endpoint.auth)
            or status in (400, 503)
            or status in endpoint.errors
        )
        if relevant:
            responses[str(status)] = {"description": description, "content": error_content}
    operation: dict[str, Any] = {
        "summary": endpoint.summary,
        "tags": [endpoint.tag],
        "operationId": endpoint.handler.__name__,
        "x-pasar-operation": endpoint.op,
        "responses": responses,
    }
    parameters = [
        {
            "name": name.strip("{}").split(":")[0],
            "in": "path",
            "required": True,
            "schema": {"type": "string"},
        }
        for name in endpoint.path.split("/")
        if name.startswith("{")
    ] + [
        {"name": name, "in": "query", "required": False, "schema": {"type": kind}}
        for name, kind in endpoint.query.items()
    ]
    if endpoint.idempotent:
        parameters.append({
            "name": "Idempotency-Key", "in": "header", "required": False,
            "schema": {"type": "string", "maxLength": 255},
            "description": "The same key and body within the window answer the first answer "
            "again (header Idempotent-Replayed: true); another body is 422 "
            "IDEMPOTENCY_KEY_REUSED; while the first runs, 409 IDEMPOTENCY_KEY_IN_PROGRESS.",
        })  # fmt: skip
    if parameters:
        operation["parameters"] = parameters
    if endpoint.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": ref(endpoint.body)}},
        }
    if endpoint.form:
        fields = {name: {"type": "string"} for name in endpoint.form}
        form = {"type": "object", "properties": fields, "required": list(endpoint.form)}
        operation["requestBody"] = {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": form}},
        }
    if endpoint.auth:
        operation["security"] = [{"bearer": []}, {"apiKey": []}]
    return operation


def openapi_document(version: str) -> dict[str, Any]:
    components: dict[str, Any] = {}
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in ENDPOINTS:
        paths.setdefault(re.sub(r":\w+}", "}", endpoint.path), {})[endpoint.method.lower()] = (
            _operation(endpoint, components)
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "pasar",
            "version": version,
            "description": "Compose LangChain agents from a marketplace of tools. "
            "GraphQL is served at /graphql.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    }


@functools.cache
def _openapi_body(version: str) -> bytes:
    return json.dumps(openapi_document(version), separators=(",", ":")).encode()


def rest_routes(version: str) -> list[Route]:
    async def openapi(request: Request) -> Response:
        # Built on first request (about 0.2 s of pydantic schema generation), once per process.
        return Response(_openapi_body(version), media_type="application/json")

    by_path: dict[str, list[Endpoint]] = {}
    for endpoint in ENDPOINTS:
        by_path.setdefault(endpoint.path, []).append(endpoint)
    return [
        Route("/openapi.json", openapi, methods=["GET"]),
        *(_route(path, endpoints) for path, endpoints in by_path.items()),
    ]


def _route(path: str, endpoints: list[Endpoint]) -> Route:
    """One route per path, so a method it lacks is a 405 whose `Allow` lists every method the
    path has (one route per method would name only its own)."""
    handlers = {endpoint.method: endpoint.routed_handler() for endpoint in endpoints}
    if len(handlers) == 1:
        [(method, handler)] = handlers.items()
        return Route(path, handler, methods=[method])

    async def by_method(request: Request) -> Response:
        return await handlers["GET" if request.method == "HEAD" else request.method](request)

    by_method.__name__ = "_".join(handler.__name__ for handler in handlers.values())
    return Route(path, by_method, methods=list(handlers))


def guarded(endpoint: Endpoint, handler: Handler) -> Handler:
    """The endpoint's handler behind its policy entry: a signed-in operation authenticates the
    caller and checks their role before the handler runs (the handler's `caller` reuses it);
    resource operations check the resource too, in the service, with the row it read."""
    found = rule(endpoint.op)  # a route without a policy entry fails at start-up
    if found.public:
        return handler

    async def checked(request: Request) -> Response:
        principal = await caller(request)
        require(principal, endpoint.op)
        return await handler(request)

    checked.__name__ = endpoint.handler.__name__
    return checked
