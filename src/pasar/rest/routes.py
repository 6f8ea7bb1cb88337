"""The REST endpoints, declared once: Starlette routes and the OpenAPI document both come from here."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pasar_core.accounts.api_key_store import ApiKeyRequest
from pasar_core.accounts.service import Credentials, PasswordChange, RefreshRequest
from pasar_core.agents.config import AgentInput, AgentPatch
from pasar_core.agents.secrets import SecretValue
from pasar_core.custom_tools.definition import ToolDefinition
from pasar_core.executions.decisions import ApprovalDecision
from pasar_core.executions.requests import ExecuteRequest
from pasar_core.rate_limits import RouteClass
from pasar_core.sandboxed_plugins.service import SandboxedInstall
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pasar.rest import accounts, agents, audit, consent, executions, health, plugins, tools
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
    TokenOut,
    ToolDetailOut,
    ToolListOut,
    UserOut,
    WebhookSecretOut,
)


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
    idempotent: bool = False
    """Takes an `Idempotency-Key` header (pasar.rest.idempotency)."""

    @property
    def limit(self) -> RouteClass | None:
        """The rate-limit class it counts against (pasar.rest.limits)."""
        return route_class(self.method, self.path)

    def routed_handler(self) -> Handler:
        """The handler behind its idempotency key (when it creates), its rate limit and the
        JSON content type of its body (415 otherwise)."""
        handler = self.handler
        if self.idempotent:
            handler = idempotent(handler, f"{self.method} {self.path}")
        if self.limit is not None:
            handler = rate_limited(handler, self.limit, signed_in=self.auth)
        if self.method in JSON_METHODS and not exempt(self.path):
            handler = json_only(handler, signed_in=self.auth)
        return handler


ENDPOINTS = (
    Endpoint("POST", "/auth/signup", accounts.sign_up, "Create an account", 201, UserOut,
             Credentials, auth=False, tag="accounts"),
    Endpoint("POST", "/auth/token", accounts.issue_token, "Log in: email and password -> access token",
             200, TokenOut, Credentials, auth=False, tag="accounts", throttled=True),
    Endpoint("POST", "/auth/refresh", accounts.refresh,
             "Spend a refresh token for a new access token and the next refresh token", 200,
             TokenOut, RefreshRequest, auth=False, tag="accounts"),
    Endpoint("POST", "/auth/logout", accounts.log_out,
             "End a session: its refresh tokens and the access tokens issued with them", 204,
             body=RefreshRequest, auth=False, tag="accounts"),
    Endpoint("POST", "/auth/password", accounts.change_password,
             "Change your password: every session and access token of yours is revoked, and you "
             "get a new session", 200, PasswordChangedOut, PasswordChange, tag="accounts",
             throttled=True),
    Endpoint("POST", "/api-keys", accounts.create_api_key,
             "Create an API key, optionally expiring (the key is shown once)", 201,
             CreatedApiKeyOut, ApiKeyRequest, tag="accounts"),
    Endpoint("GET", "/api-keys", accounts.list_api_keys,
             "Your API keys, newest first: prefix, name, status and dates (never the key)", 200,
             ApiKeyListOut, tag="accounts", query={"limit": "integer", "offset": "integer"}),
    Endpoint("DELETE", "/api-keys/{key_id}", accounts.revoke_api_key,
             "Revoke one of your API keys (it is refused from now on)", 204, tag="accounts"),
    Endpoint("GET", "/tools", tools.list_tools,
             "The catalogue: installed and sandboxed plugins' tools, and (signed in) your custom "
             "tools", 200, ToolListOut, auth=False, tag="tools", query={"family": "string"}),
    Endpoint("POST", "/tools", tools.register_tool,
             "Register a custom tool (python: runs in a sandbox; http: one guarded request)",
             201, CustomToolSavedOut, ToolDefinition, tag="tools", idempotent=True),
    Endpoint("GET", "/tools/{tool_id}", tools.get_tool,
             "One tool; for your custom tools (id or id@version) with their definition", 200,
             ToolDetailOut, auth=False, tag="tools"),
    Endpoint("PUT", "/tools/{tool_id}", tools.update_tool,
             "A new version of your custom tool (the whole definition)", 200,
             CustomToolSavedOut, ToolDefinition, tag="tools"),
    Endpoint("DELETE", "/tools/{tool_id}", tools.delete_tool,
             "Delete your custom tool and all its versions (refused while agents use it)", 204,
             tag="tools"),
    Endpoint("POST", "/plugins/sandboxed", plugins.install_plugin,
             "Admins: install an untrusted plugin wheel into a sandbox image (a sandbox worker "
             "builds it and reads its manifest)", 201, SandboxedPluginOut, SandboxedInstall,
             tag="plugins"),
    Endpoint("GET", "/plugins/sandboxed", plugins.list_plugins, "Admins: sandboxed plugins",
             200, SandboxedPluginListOut, tag="plugins"),
    Endpoint("DELETE", "/plugins/sandboxed/{name}", plugins.remove_plugin,
             "Admins: remove a sandboxed plugin (refused while agents use its tools)", 204,
             tag="plugins"),
    Endpoint("POST", "/agents", agents.create_agent, "Create an agent", 201, AgentSavedOut,
             AgentInput, idempotent=True),
    Endpoint("GET", "/agents", agents.list_agents, "List your agents", 200, AgentListOut,
             query={"limit": "integer", "offset": "integer"}),
    Endpoint("GET", "/agents/{agent_id}", agents.get_agent, "One of your agents", 200, AgentOut),
    Endpoint("PUT", "/agents/{agent_id}", agents.update_agent,
             "Update an agent (the fields given replace the stored ones)", 200, AgentSavedOut,
             AgentPatch),
    Endpoint("DELETE", "/agents/{agent_id}", agents.delete_agent, "Delete an agent", 204),
    Endpoint("GET", "/agents/{agent_id}/secrets", agents.list_secrets,
             "Names of the agent's secrets (values are never returned)", 200, SecretNamesOut),
    Endpoint("PUT", "/agents/{agent_id}/secrets/{name}", agents.put_secret,
             "Set a secret a tool family uses (stored encrypted)", 204, body=SecretValue),
    Endpoint("DELETE", "/agents/{agent_id}/secrets/{name}", agents.delete_secret,
             "Delete a secret", 204),
    Endpoint("POST", "/agents/{agent_id}/execute", executions.execute,
             "Run an agent: 200 with the finished execution, or 202 with its state so far", 200,
             ExecutionOut, ExecuteRequest, tag="executions", idempotent=True),
    Endpoint("GET", "/agents/{agent_id}/executions", executions.list_executions,
             "An agent's executions, newest first", 200, ExecutionListOut, tag="executions",
             query={"first": "integer", "after": "string"}),
    Endpoint("GET", "/executions/{execution_id}", executions.get_execution, "One execution", 200,
             ExecutionOut, tag="executions"),
    Endpoint("GET", "/executions/{execution_id}/events", executions.events,
             "Server-sent events of a run (resume with Last-Event-ID)", 200, tag="executions"),
    Endpoint("POST", "/executions/{execution_id}/cancel", executions.cancel,
             "Cancel a queued or running execution", 200, ExecutionOut, tag="executions"),
    Endpoint("POST", "/executions/{execution_id}/approval", executions.decide_approval,
             "Approve or reject the tool call a paused run waits on; the run resumes", 200,
             ExecutionOut, ApprovalDecision, tag="executions"),
    Endpoint("GET", "/webhook-secret", executions.get_webhook_secret,
             "The secret that signs your webhook deliveries", 200, WebhookSecretOut,
             tag="executions"),
    Endpoint("GET", "/audit", audit.list_audit,
             "Admins: the audit log, newest first (filters: actor_id, action or 'prefix.', "
             "target_type, target_id, since, until; pages: limit, before_id)", 200,
             audit.AuditPageOut, tag="audit",
             query={"actor_id": "string", "action": "string", "target_type": "string",
                    "target_id": "string", "since": "string", "until": "string",
                    "before_id": "integer", "limit": "integer"}),
    Endpoint("GET", "/audit/scope-usage", audit.export_scope_usage,
             "Admins: which provider scopes which agents' tool calls used, with counts and "
             "first/last use (format=json or csv)", 200, audit.ScopeUsageListOut, tag="audit",
             query={"provider": "string", "since": "string", "until": "string",
                    "format": "string"}),
    Endpoint("GET", "/healthz", health.healthz, "Liveness", 200, HealthOut, auth=False,
             tag="operations"),
    Endpoint("GET", "/readyz", health.readyz, "Readiness (database reachable)", 200, HealthOut,
             auth=False, tag="operations"),
    Endpoint("GET", "/files", list_files, "List your files (tool outputs), sorted by path", 200,
             FileListOut, tag="files", query={"prefix": "string", "limit": "integer"}),
    Endpoint("GET", "/files/{path:path}", download_file,
             "Download one of your files (streamed, as an attachment)", 200, tag="files"),
    Endpoint("GET", "/auth/{provider}/start", consent.start_page,
             "Consent link (every auth_url): names the pasar account and asks its password "
             "(HTML page)", 200, auth=False, tag="connections", query={"state": "string"}),
    Endpoint("POST", "/auth/{provider}/start", consent.start,
             "Sign-in form of a consent link: binds this browser (HttpOnly cookie) and "
             "redirects (303) to the provider", 303, auth=False, tag="connections"),
    Endpoint("GET", "/auth/{provider}/callback", consent.callback,
             "OAuth consent callback (browser redirect): only in the browser that started the "
             "consent; exchanges the code, answers an HTML page",
             200, auth=False, tag="connections",
             query={"code": "string", "state": "string", "error": "string"}),
    Endpoint("GET", "/connections", oauth_routes.list_connections,
             "Your provider grants: scopes and health (never tokens)", 200,
             oauth_routes.ConnectionListOut, tag="connections"),
    Endpoint("DELETE", "/connections/{provider}", oauth_routes.disconnect,
             "Revoke a provider grant at the provider and delete its tokens", 200,
             oauth_routes.DisconnectedOut, tag="connections"),
)  # fmt: skip

ERROR_STATUSES = {
    400: "Malformed request",
    401: "Missing, invalid or expired credentials",
    403: "Forbidden (admins only)",
    404: "Not found (or not yours)",
    409: "Conflict: the id is taken or in use",
    413: "Body too large",
    415: "Body is not JSON",
    422: "Body does not fit the schema",
    429: "Too many attempts (see Retry-After)",
}


def _operation(endpoint: Endpoint, components: dict[str, Any]) -> dict[str, Any]:
    def ref(model: type[BaseModel]) -> dict[str, str]:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(schema.pop("$defs", {}))
        components[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    success: dict[str, Any] = {"description": endpoint.summary}
    if endpoint.response is not None:
        success["content"] = {"application/json": {"schema": ref(endpoint.response)}}
    responses: dict[str, Any] = {str(endpoint.status): success}
    error_content = {"application/json": {"schema": ref(ErrorOut)}}
    for status, description in ERROR_STATUSES.items():
        relevant = (
            (status == 401 and endpoint.auth)
            or (status in (413, 415, 422) and endpoint.body is not None)
            or (status == 404 and "{" in endpoint.path)
            or (status == 429 and (endpoint.throttled or endpoint.limit is not None))
            or (status == 409 and endpoint.tag in ("tools", "plugins") and endpoint.method != "GET")
            or (status == 403 and endpoint.tag in ("plugins", "audit"))
            or status == 400
        )
        if relevant:
            responses[str(status)] = {"description": description, "content": error_content}
    operation: dict[str, Any] = {
        "summary": endpoint.summary,
        "tags": [endpoint.tag],
        "operationId": endpoint.handler.__name__,
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


def rest_routes(version: str) -> list[Route]:
    document = openapi_document(version)

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    return [
        Route("/openapi.json", openapi, methods=["GET"]),
        *(Route(e.path, e.routed_handler(), methods=[e.method]) for e in ENDPOINTS),
    ]
