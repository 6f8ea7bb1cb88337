"""Gmail: search and read messages, write drafts, send."""

from __future__ import annotations

import base64
from email.message import EmailMessage
from typing import Any

from pasar_core.errors import ToolError
from pasar_core.specs import Effect, ToolContext, ToolSpec

from pasar_google_workspace import provider as scopes
from pasar_google_workspace.client import GMAIL, ID_SCHEMA, call, seg

MESSAGE_OUT = {
    "type": "object",
    "required": ["id", "thread_id", "subject", "from", "snippet"],
    "properties": {
        "id": {"type": "string"},
        "thread_id": {"type": "string"},
        "from": {"type": "string"},
        "to": {"type": "string"},
        "subject": {"type": "string"},
        "date": {"type": "string"},
        "snippet": {"type": "string"},
        "body": {"type": "string"},
        "labels": {"type": "array", "items": {"type": "string"}},
    },
}
HEADER_TEXT = {"type": "string", "maxLength": 998, "pattern": "^[^\\r\\n]*$"}
ADDRESS = {"type": "string", "maxLength": 320, "pattern": "^[^\\s,<>@]+@[^\\s,<>@]+$"}
COMPOSE_IN = {
    "type": "object",
    "required": ["to", "subject", "body"],
    "additionalProperties": False,
    "properties": {
        "to": {"type": "array", "items": ADDRESS, "minItems": 1, "maxItems": 50},
        "cc": {"type": "array", "items": ADDRESS, "maxItems": 50},
        "subject": HEADER_TEXT,
        "body": {"type": "string", "maxLength": 100_000},
    },
}


def _body_text(payload: dict[str, Any]) -> str:
    """The first text/plain part of a Gmail message payload, decoded."""
    if payload.get("mimeType") == "text/plain" and payload.get("body", {}).get("data"):
        data = payload["body"]["data"]
        return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)).decode(errors="replace")
    for part in payload.get("parts", []) or []:
        text = _body_text(part)
        if text:
            return text
    return ""


def _message_view(message: dict[str, Any], with_body: bool) -> dict[str, Any]:
    payload = message.get("payload", {})
    headers = {h["name"].lower(): h["value"] for h in payload.get("headers", [])}
    view = {
        "id": message["id"],
        "thread_id": message.get("threadId", ""),
        "from": headers.get("from", ""),
        "to": headers.get("to", ""),
        "subject": headers.get("subject", ""),
        "date": headers.get("date", ""),
        "snippet": message.get("snippet", ""),
        "labels": list(message.get("labelIds", [])),
    }
    if with_body:
        view["body"] = _body_text(payload)[:20_000]
    return view


async def read(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    base = "/gmail/v1/users/me/messages"
    if "message_id" in args:
        message = await call(
            ctx, "GET", GMAIL, f"{base}/{seg(args['message_id'])}", params={"format": "full"}
        )
        return {"messages": [_message_view(message, with_body=True)]}
    listing = await call(
        ctx,
        "GET",
        GMAIL,
        base,
        params={"q": args.get("query"), "maxResults": args.get("max_results", 10)},
    )
    messages = []
    for ref in listing.get("messages", []) or []:
        message = await call(
            ctx, "GET", GMAIL, f"{base}/{seg(ref['id'])}", params={"format": "full"}
        )
        messages.append(_message_view(message, with_body=args.get("include_body", False)))
    return {"messages": messages}


def _raw(args: dict[str, Any]) -> str:
    message = EmailMessage()
    message["To"] = ", ".join(args["to"])
    if args.get("cc"):
        message["Cc"] = ", ".join(args["cc"])
    try:
        message["Subject"] = args["subject"]
    except ValueError as error:
        raise ToolError(f"invalid subject: {error}") from None
    message.set_content(args["body"])
    return base64.urlsafe_b64encode(message.as_bytes()).decode()


async def draft(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    created = await call(
        ctx, "POST", GMAIL, "/gmail/v1/users/me/drafts", body={"message": {"raw": _raw(args)}}
    )
    return {"draft_id": created["id"], "message_id": created.get("message", {}).get("id", "")}


async def send(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    sent = await call(
        ctx, "POST", GMAIL, "/gmail/v1/users/me/messages/send", body={"raw": _raw(args)}
    )
    return {"message_id": sent["id"], "thread_id": sent.get("threadId", "")}


GMAIL_READ = ToolSpec(
    id="gmail:read",
    title="Search and read Gmail",
    description="Search your Gmail with Gmail's query syntax (for example 'from:ana is:unread') "
    "or read one message by id. Returns sender, subject, date, snippet and, when reading one "
    "message or include_body is true, the plain-text body.",
    input_schema={
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "query": {"type": "string", "maxLength": 500},
            "message_id": ID_SCHEMA,
            "max_results": {"type": "integer", "minimum": 1, "maximum": 25, "default": 10},
            "include_body": {"type": "boolean", "default": False},
        },
    },
    output_schema={
        "type": "object",
        "required": ["messages"],
        "properties": {"messages": {"type": "array", "items": MESSAGE_OUT}},
    },
    run=read,
    effect=Effect.READ,
    auth_provider="google",
    scopes=frozenset({scopes.GMAIL_READONLY}),
)

GMAIL_DRAFT = ToolSpec(
    id="gmail:draft",
    title="Write a Gmail draft",
    description="Save an email as a draft in your Gmail (nothing is sent).",
    input_schema=COMPOSE_IN,
    output_schema={
        "type": "object",
        "required": ["draft_id"],
        "properties": {"draft_id": {"type": "string"}, "message_id": {"type": "string"}},
    },
    run=draft,
    effect=Effect.WRITE,
    auth_provider="google",
    scopes=frozenset({scopes.GMAIL_COMPOSE}),
)

GMAIL_SEND = ToolSpec(
    id="gmail:send",
    title="Send an email with Gmail",
    description="Send an email from your Gmail account to the given recipients.",
    input_schema=COMPOSE_IN,
    output_schema={
        "type": "object",
        "required": ["message_id"],
        "properties": {"message_id": {"type": "string"}, "thread_id": {"type": "string"}},
    },
    run=send,
    effect=Effect.SEND,
    auth_provider="google",
    scopes=frozenset({scopes.GMAIL_SEND}),
)
