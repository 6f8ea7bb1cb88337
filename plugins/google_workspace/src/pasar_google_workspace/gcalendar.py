"""Google Calendar: list events, create an event."""

from __future__ import annotations

from typing import Any

from pasar_core.specs import Effect, ToolContext, ToolSpec

from pasar_google_workspace import provider as scopes
from pasar_google_workspace.client import WWW, call, seg

CALENDAR_ID = {"type": "string", "pattern": "^[A-Za-z0-9_.@#+-]{1,254}$", "default": "primary"}
DATETIME = {
    "type": "string",
    "format": "date-time",
    "maxLength": 40,
    "pattern": "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}(:\\d{2}(\\.\\d+)?)?(Z|[+-]\\d{2}:\\d{2})$",
}
EVENT_OUT = {
    "type": "object",
    "required": ["id", "summary", "start", "end"],
    "properties": {
        "id": {"type": "string"},
        "summary": {"type": "string"},
        "start": {"type": "string"},
        "end": {"type": "string"},
        "location": {"type": "string"},
        "url": {"type": "string"},
        "attendees": {"type": "array", "items": {"type": "string"}},
    },
}


def _when(value: dict[str, Any]) -> str:
    return str(value.get("dateTime") or value.get("date") or "")


def _event_view(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": event["id"],
        "summary": event.get("summary", ""),
        "start": _when(event.get("start", {})),
        "end": _when(event.get("end", {})),
        "location": event.get("location", ""),
        "url": event.get("htmlLink", ""),
        "attendees": [a.get("email", "") for a in event.get("attendees", [])],
    }


async def read(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    calendar = seg(args.get("calendar_id", "primary"))
    data = await call(
        ctx,
        "GET",
        WWW,
        f"/calendar/v3/calendars/{calendar}/events",
        params={
            "timeMin": args.get("time_min"),
            "timeMax": args.get("time_max"),
            "q": args.get("query"),
            "maxResults": args.get("max_results", 25),
            "singleEvents": "true",
            "orderBy": "startTime",
        },
    )
    return {"events": [_event_view(event) for event in data.get("items", [])]}


async def create(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    calendar = seg(args.get("calendar_id", "primary"))
    zone = args.get("time_zone")
    body: dict[str, Any] = {
        "summary": args["summary"],
        "start": {"dateTime": args["start"], **({"timeZone": zone} if zone else {})},
        "end": {"dateTime": args["end"], **({"timeZone": zone} if zone else {})},
    }
    for key in ("description", "location"):
        if args.get(key):
            body[key] = args[key]
    if args.get("attendees"):
        body["attendees"] = [{"email": email} for email in args["attendees"]]
    event = await call(
        ctx,
        "POST",
        WWW,
        f"/calendar/v3/calendars/{calendar}/events",
        body=body,
        params={"sendUpdates": "none"},
    )
    return _event_view(event)


CALENDAR_READ = ToolSpec(
    id="calendar:read",
    title="List Google Calendar events",
    description="Events of a calendar ('primary' by default) between optional RFC 3339 times, "
    "in start order, optionally matching a text.",
    input_schema={
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "calendar_id": CALENDAR_ID,
            "time_min": DATETIME,
            "time_max": DATETIME,
            "query": {"type": "string", "maxLength": 200},
            "max_results": {"type": "integer", "minimum": 1, "maximum": 250, "default": 25},
        },
    },
    output_schema={
        "type": "object",
        "required": ["events"],
        "properties": {"events": {"type": "array", "items": EVENT_OUT}},
    },
    run=read,
    effect=Effect.READ,
    auth_provider="google",
    scopes=frozenset({scopes.CALENDAR_EVENTS_READONLY}),
)

CALENDAR_CREATE = ToolSpec(
    id="calendar:create",
    title="Create a Google Calendar event",
    description="Create an event (RFC 3339 start and end) on a calendar ('primary' by "
    "default). Attendees are added without sending invitations.",
    input_schema={
        "type": "object",
        "required": ["summary", "start", "end"],
        "additionalProperties": False,
        "properties": {
            "calendar_id": CALENDAR_ID,
            "summary": {"type": "string", "minLength": 1, "maxLength": 500},
            "description": {"type": "string", "maxLength": 8000},
            "location": {"type": "string", "maxLength": 500},
            "start": DATETIME,
            "end": DATETIME,
            "time_zone": {"type": "string", "maxLength": 64},
            "attendees": {
                "type": "array",
                "maxItems": 100,
                "items": {"type": "string", "pattern": "^[^\\s,<>@]+@[^\\s,<>@]+$"},
            },
        },
    },
    output_schema=EVENT_OUT,
    run=create,
    effect=Effect.WRITE,
    auth_provider="google",
    scopes=frozenset({scopes.CALENDAR_EVENTS}),
)
