"""The emulator's REST subsets of Gmail, Docs, Sheets, Calendar and Drive, with Google's
response shapes and errors (401 authError, 403 insufficientPermissions, 404 notFound,
429 rateLimitExceeded with Retry-After)."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from email import message_from_bytes, policy
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pasar_google_workspace import provider as g
from pasar_google_workspace.emulator.oauth import new_id
from pasar_google_workspace.emulator.state import EmulatorState, Token, covered_by

STATUS_TEXT = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
REASONS = {
    400: "badRequest",
    401: "authError",
    403: "insufficientPermissions",
    404: "notFound",
    429: "rateLimitExceeded",
    500: "backendError",
    503: "backendError",
}


class ApiError(Exception):
    def __init__(self, status: int, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message = status, message
        self.reason = reason or REASONS.get(status, "badRequest")


def error_response(error: ApiError, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {
        "error": {
            "code": error.status,
            "message": error.message,
            "errors": [{"message": error.message, "domain": "global", "reason": error.reason}],
            "status": STATUS_TEXT.get(error.status, "UNKNOWN"),
        }
    }
    return JSONResponse(body, status_code=error.status, headers=headers)


Handler = Callable[[Request, EmulatorState], Awaitable[Any]]


def api(accepted: tuple[str, ...], handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Injected faults first, then the bearer token, then its scopes, then `handler`."""

    async def endpoint(request: Request) -> Response:
        emulator: EmulatorState = request.app.state.emulator
        emulator.hits["api:" + request.url.path] += 1
        fault = emulator.take_fault(request.url.path)
        if fault is not None:
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after else None
            message = (
                "Quota exceeded for quota metric 'Queries'."
                if fault.status == 429
                else ("Internal error encountered.")
            )
            return error_response(ApiError(fault.status, message), headers)
        header = request.headers.get("authorization", "")
        with emulator.lock:
            token: Token | None = emulator.access_tokens.get(header.removeprefix("Bearer "))
        if (
            not header.startswith("Bearer ")
            or token is None
            or (token.expires_at is not None and token.expires_at < time.time())
        ):
            return error_response(
                ApiError(
                    401,
                    "Request had invalid authentication credentials. Expected OAuth 2 "
                    "access token, login cookie or other valid authentication credential.",
                ),
                {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
            )
        if not covered_by(token.scopes) & set(accepted):
            return error_response(ApiError(403, "Request had insufficient authentication scopes."))
        try:
            result = await handler(request, emulator)
        except ApiError as error:
            return error_response(error)
        return JSONResponse(result)

    return endpoint


async def body_of(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.body() or b"{}")
    except ValueError:
        raise ApiError(400, "Invalid JSON payload received.") from None
    if not isinstance(data, dict):
        raise ApiError(400, "Invalid JSON payload received.")
    return data


# Gmail -----------------------------------------------------------------------------------------


def _header(message: dict[str, Any], name: str) -> str:
    for header in message["payload"].get("headers", []):
        if header["name"].lower() == name:
            return str(header["value"])
    return ""


def _matches(message: dict[str, Any], query: str) -> bool:
    for term in query.split():
        key, _, value = term.partition(":")
        value = value.lower()
        if key == "from" and value:
            ok = value in _header(message, "from").lower()
        elif key == "subject" and value:
            ok = value in _header(message, "subject").lower()
        elif key == "is" and value:
            ok = value.upper() in message.get("labelIds", [])
        else:
            text = (_header(message, "subject") + " " + message.get("snippet", "")).lower()
            ok = term.lower() in text
        if not ok:
            return False
    return True


async def gmail_list(request: Request, emulator: EmulatorState) -> dict[str, Any]:
    query = request.query_params.get("q", "")
    limit = int(request.query_params.get("maxResults", "100"))
    with emulator.lock:
        found = [m for m in emulator.messages.values() if _matches(m, query)]
    found.sort(key=lambda m: m.get("internalDate", ""), reverse=True)
    result: dict[str, Any] = {"resultSizeEstimate": len(found)}
    if found:
        result["messages"] = [{"id": m["id"], "threadId": m["threadId"]} for m in found[:limit]]
    return result


async def gmail_get(request: Request, emulator: EmulatorState) -> dict[str, Any]:
    message = emulator.messages.get(request.path_params["id"])
    if message is None:
        raise ApiError(404, "Requested entity was not found.")
    if request.query_params.get("format") in ("metadata", "minimal"):
        return {k: v for k, v in message.items() if k != "payload"} | {
            "payload": {"headers": message["payload"]["headers"]}
        }
    return message


def _stored_message(raw: str, labels: list[str], emulator: EmulatorState) -> dict[str, Any]:
    try:
        data = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except ValueError:
        raise ApiError(400, "Invalid value for ByteString") from None
    parsed = message_from_bytes(data, policy=policy.default)
    if not parsed.get("To"):
        raise ApiError(400, "Invalid To header", "invalidArgument")
    body = parsed.get_body(("plain",))
    text = str(body.get_content()) if body is not None else ""
    mid = new_id()
    return {
        "id": mid,
        "threadId": mid,
        "labelIds": labels,
        "snippet": text[:100],
        "internalDate": str(int(time.time() * 1000)),
        "payload": {
            "mimeType": "text/plain",
            "headers": [{"name": k, "value": str(v)} for k, v in parsed.items()],
            "body": {"size": len(text), "data": raw},
        },
    }


async def gmail_send(request: Request, emulator: EmulatorState) -> dict[str, Any]:
    raw = (await body_of(request)).get("raw")
    if not isinstance(raw, str) or not raw:
        raise ApiError(400, "Recipient address required", "invalidArgument")
    message = _stored_message(raw, ["SENT"], emulator)
    with emulator.lock:
        emulator.messages[message["id"]] = message
    return {"id": message["id"], "threadId": message["threadId"], "labelIds": ["SENT"]}


async def gmail_draft(request: Request, emulator: EmulatorState) -> dict[str, Any]:
    inner = (await body_of(request)).get("message")
    raw = inner.get("raw") if isinstance(inner, dict) else None
    if not isinstance(raw, str) or not raw:
        raise ApiError(400, "Missing draft message", "invalidArgument")
    message = _stored_message(raw, ["DRAFT"], emulator)
    draft_id = "r" + new_id()
    with emulator.lock:
        emulator.drafts[draft_id] = {"id": draft_id, "message": message}
    return {
        "id": draft_id,
        "message": {k: message[k] for k in ("id", "threadId", "labelIds")},
    }


# Docs ------------------------------------------------------------------------------------------


def _doc_view(doc: dict[str, Any]) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"endIndex": 1, "sectionBreak": {"sectionStyle": {}}}]
    index = 1
    for line in doc["text"].splitlines(keepends=True):
        end = index + len(line)
        content.append(
            {
                "startIndex": index,
                "endIndex": end,
                "paragraph": {
                    "elements": [
                        {
                            "startIndex": index,
                            "endIndex": end,
                            "textRun": {"content": line, "textStyle": {}},
                        }
                    ],
                    "paragraphStyle": {"namedStyleType": "NORMAL_TEXT"},
                },
            }
        )
        index = end
    return {
        "documentId": doc["documentId"],
        "title": doc["title"],
        "body": {"content": content},
        "revisionId": doc["revisionId"],
        "suggestionsViewMode": "SUGGESTIONS_INLINE",
    }


def _doc(emulator: EmulatorState, doc_id: str) -> dict[str, Any]:
    doc = emulator.documents.get(doc_id)
    if doc is None:
        raise ApiError(404, "Requested entity was not found.")
    return doc


async def docs_get(request: Request, emulator: EmulatorState) -> dict[str, Any]:
    return _doc_view(_doc(emulator, request.path_params["id"]))


async def docs_create(request: Request, emulator: EmulatorState) -> dict[str, Any]:
    title = str((await body_of(request)).get("title") or "Untitled document")
    doc_id = new_id() + new_id()
    emulator.add_document(doc_id, title, "\n")
    return _doc_view(emulator.documents[doc_id])


async def docs_batch_update(request: Request, emulator: EmulatorState) -> dict[str, Any]:
    doc = _doc(emulator, request.path_params["id"])
    requests = (await body_of(request)).get("requests")
    if not isinstance(requests, list) or not requests:
        raise ApiError(400, "Invalid requests: must not be empty.")
    replies: list[dict[str, Any]] = []
    with emulator.lock:
        for item in requests:
            insert = item.get("insertText") if isinstance(item, dict) else None
            if not isinstance(insert, dict) or not isinstance(insert.get("text"), str):
                raise ApiError(400, "Invalid requests[0]: unsupported request in the emulator.")
            text = doc["text"]
            if "endOfSegmentLocation" in insert:
                doc["text"] = (
                    text[:-1] + insert["text"] + text[-1:]
                    if text.endswith("\n")
                    else (text + insert["text"])
                )
            else:
                at = int(insert.get("location", {}).get("index", 1)) - 1
                if not 0 <= at <= len(text) - 1:
                    raise ApiError(400, "Index must be less than the end index of the segment.")
                doc["text"] = text[:at] + insert["text"] + text[at:]
            replies.append({})
        doc["revisionId"] = new_id()
    return {
        "documentId": doc["documentId"],
        "replies": replies,
        "writeControl": {"requiredRevisionId": doc["revisionId"]},
    }


# Sheets ----------------------------------------------------------------------------------------

CELL = re.compile(r"^([A-Z]+)?(\d+)?$")


def _column(letters: str) -> int:
    number = 0
    for char in letters:
        number = number * 26 + ord(char) - 64
    return number - 1


def _letters(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _parse_range(sheet: dict[str, Any], a1: str) -> tuple[str, int, int, int | None, int | None]:
    """(tab, first row, first column, last row or None, last column or None), 0-based."""
    tab, sep, cells = a1.rpartition("!")
    if not sep:
        tab, cells = (a1, "") if a1 in sheet["tabs"] else (next(iter(sheet["tabs"])), a1)
    tab = tab.strip("'")
    if tab not in sheet["tabs"]:
        raise ApiError(400, f"Unable to parse range: {a1}")
    if not cells:
        return tab, 0, 0, None, None
    first, _, last = cells.upper().partition(":")
    start, end = CELL.match(first), CELL.match(last or first)
    if not start or not end or not first:
        raise ApiError(400, f"Unable to parse range: {a1}")
    row0 = int(start.group(2)) - 1 if start.group(2) else 0
    col0 = _column(start.group(1)) if start.group(1) else 0
    row1 = int(end.group(2)) - 1 if end.group(2) else None
    col1 = _column(end.group(1)) if end.group(1) else None
    return tab, row0, col0, row1, col1


def _sheet(emulator: EmulatorState, sheet_id: str) -> dict[str, Any]:
    sheet = emulator.spreadsheets.get(sheet_id)
    if sheet is None:
        raise ApiError(404, "Requested entity was not found.")
    return sheet


def _a1(tab: str, row0: int, col0: int, row1: int, col1: int) -> str:
    return f"{tab}!{_letters(col0)}{row0 + 1}:{_letters(col1)}{row1 + 1}"


async def values_get(request: Request, emulator: EmulatorState) -> dict[str, Any]:
    sheet = _sheet(emulator, request.path_params["id"])
    tab, row0, col0, row1, col1 = _parse_range(sheet, request.path_params["range"])
    grid = sheet["tabs"][tab]
    rows = grid[row0 : None if row1 is None else row1 + 1]
    values = [row[col0 : None if col1 is None else col1 + 1] for row in rows]
    while values and not any(values[-1]):
        values.pop()
    last_row = row1 if row1 is not None else max(row0, row0 + len(values) - 1)
    last_col = col1 if col1 is not None else max([col0] + [col0 + len(r) - 1 for r in values])
    result: dict[str, Any] = {
        "range": _a1(tab, row0, col0, last_row, last_col),
        "majorDimension": "ROWS",
    }
    if values:
        result["values"] = values
    return result


def _write(grid: list[list[Any]], row0: int, col0: int, values: list[list[Any]]) -> None:
    for r, row in enumerate(values):
        while len(grid) <= row0 + r:
            grid.append([])
        target = grid[row0 + r]
        for c, value in enumerate(row):
            while len(target) <= col0 + c:
                target.append("")
            target[col0 + c] = "" if value is None else str(value)


def _values_body(body: dict[str, Any]) -> list[list[Any]]:
    values = body.get("values")
    if not isinstance(values, list) or not all(isinstance(row, list) for row in values):
        raise ApiError(400, "Invalid values: must be a list of rows.")
    return values


def _updates(
    sheet_id: str, tab: str, row0: int, col0: int, values: list[list[Any]]
) -> dict[str, Any]:
    width = max((len(row) for row in values), default=0)
    return {
        "spreadsheetId": sheet_id,
        "updatedRange": _a1(
            tab, row0, col0, row0 + max(len(values), 1) - 1, col0 + max(width, 1) - 1
        ),
        "updatedRows": len(values),
        "updatedColumns": width,
        "updatedCells": sum(len(row) for row in values),
    }


async def values_update(request: Request, emulator: EmulatorState) -> dict[str, Any]:
    if request.query_params.get("valueInputOption") not in ("RAW", "USER_ENTERED"):
        raise ApiError(400, "Invalid valueInputOption: must be RAW or USER_ENTERED.")
    sheet_id = request.path_params["id"]
    sheet = _sheet(emulator, sheet_id)
    tab, row0, col0, _, _ = _parse_range(sheet, request.path_params["range"])
    values = _values_body(await body_of(request))
    with emulator.lock:
        _write(sheet["tabs"][tab], row0, col0, values)
    return _updates(sheet_id, tab, row0, col0, values)


async def values_append(request: Request, emulator: EmulatorState) -> dict[str, Any]:
    if request.query_params.get("valueInputOption") not in ("RAW", "USER_ENTERED"):
        raise ApiError(400, "Invalid valueInputOption: must be RAW or USER_ENTERED.")
    sheet_id = request.path_params["id"]
    sheet = _sheet(emulator, sheet_id)
    tab, row0, col0, _, _ = _parse_range(sheet, request.path_params["range"])
    values = _values_body(await body_of(request))
    with emulator.lock:
        grid = sheet["tabs"][tab]
        last = max((i for i, row in enumerate(grid) if any(row)), default=row0 - 1)
        start = max(last + 1, row0)
        _write(grid, start, col0, values)
    width = max((len(row) for row in grid), default=1)
    return {
        "spreadsheetId": sheet_id,
        "tableRange": _a1(tab, row0, col0, max(last, row0), col0 + width - 1),
        "updates": _updates(sheet_id, tab, start, col0, values),
    }


# Calendar --------------------------------------------------------------------------------------


def _instant(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, f"Bad Request: invalid time {value[:40]!r}", "badRequest") from None


def _calendar(request: Request, emulator: EmulatorState) -> None:
    if request.path_params["calendar"] not in ("primary", emulator.user_email):
        raise ApiError(404, "Not Found")


async def events_list(request: Request, emulator: EmulatorState) -> dict[str, Any]:
    _calendar(request, emulator)
    params = request.query_params
    low = _instant(params["timeMin"]) if params.get("timeMin") else None
    high = _instant(params["timeMax"]) if params.get("timeMax") else None
    text = params.get("q", "").lower()
    with emulator.lock:
        events = list(emulator.events.values())
    items = [
        event
        for event in events
        if (low is None or _instant(event["end"]["dateTime"]) > low)
        and (high is None or _instant(event["start"]["dateTime"]) < high)
        and text in (event.get("summary", "") + " " + event.get("description", "")).lower()
    ]
    items.sort(key=lambda event: _instant(event["start"]["dateTime"]))
    return {
        "kind": "calendar#events",
        "summary": emulator.user_email,
        "timeZone": "UTC",
        "accessRole": "owner",
        "updated": "2025-03-03T09:00:00.000Z",
        "items": items[: int(params.get("maxResults", "250"))],
    }


async def events_insert(request: Request, emulator: EmulatorState) -> dict[str, Any]:
    _calendar(request, emulator)
    body = await body_of(request)
    start = (body.get("start") or {}).get("dateTime")
    end = (body.get("end") or {}).get("dateTime")
    if not isinstance(start, str) or not isinstance(end, str):
        raise ApiError(400, "Missing end time.", "required")
    if _instant(end) <= _instant(start):
        raise ApiError(400, "The specified time range is empty.", "timeRangeEmpty")
    event_id = new_id().lower()
    event = {
        "kind": "calendar#event",
        "id": event_id,
        "status": "confirmed",
        "htmlLink": f"https://www.google.com/calendar/event?eid={event_id}",
        "summary": str(body.get("summary", "")),
        "start": body["start"],
        "end": body["end"],
        "organizer": {"email": emulator.user_email, "self": True},
    }
    for key in ("description", "location", "attendees"):
        if key in body:
            event[key] = body[key]
    with emulator.lock:
        emulator.events[event_id] = event
    return event


# Drive -----------------------------------------------------------------------------------------

Q_CLAUSE = re.compile(r"(\w+)\s*(=|contains)\s*('(?:[^'\\]|\\.)*'|true|false)")


async def files_list(request: Request, emulator: EmulatorState) -> dict[str, Any]:
    query = request.query_params.get("q", "")
    with emulator.lock:
        files = list(emulator.files.values())
    for field, op, raw in Q_CLAUSE.findall(query):
        value = raw[1:-1].replace("\\'", "'").replace("\\\\", "\\") if raw.startswith("'") else raw
        if field == "trashed":
            continue
        if field == "mimeType" and op == "=":
            files = [f for f in files if f["mimeType"] == value]
        elif field == "name" and op == "contains":
            files = [f for f in files if value.lower() in f["name"].lower()]
        else:
            raise ApiError(400, "Invalid Value", "invalid")
    files.sort(key=lambda f: f["modifiedTime"], reverse=True)
    size = int(request.query_params.get("pageSize", "100"))
    return {"kind": "drive#fileList", "incompleteSearch": False, "files": files[:size]}


GMAIL_READ = (g.GMAIL_READONLY, g.GMAIL_MODIFY)
ROUTES = [
    Route("/gmail/v1/users/me/messages", api(GMAIL_READ, gmail_list)),
    Route(
        "/gmail/v1/users/me/messages/send",
        api((g.GMAIL_SEND, g.GMAIL_COMPOSE, g.GMAIL_MODIFY), gmail_send),
        methods=["POST"],
    ),
    Route("/gmail/v1/users/me/messages/{id}", api(GMAIL_READ, gmail_get)),
    Route(
        "/gmail/v1/users/me/drafts",
        api((g.GMAIL_COMPOSE, g.GMAIL_MODIFY), gmail_draft),
        methods=["POST"],
    ),
    Route(
        "/v1/documents", api((g.DOCUMENTS, g.DRIVE, g.DRIVE_FILE), docs_create), methods=["POST"]
    ),
    Route(
        "/v1/documents/{id}:batchUpdate",
        api((g.DOCUMENTS, g.DRIVE, g.DRIVE_FILE), docs_batch_update),
        methods=["POST"],
    ),
    Route(
        "/v1/documents/{id}", api((g.DOCUMENTS_READONLY, g.DRIVE_READONLY, g.DRIVE_FILE), docs_get)
    ),
    Route(
        "/v4/spreadsheets/{id}/values/{range:path}:append",
        api((g.SPREADSHEETS, g.DRIVE, g.DRIVE_FILE), values_append),
        methods=["POST"],
    ),
    Route(
        "/v4/spreadsheets/{id}/values/{range:path}",
        api((g.SPREADSHEETS, g.DRIVE, g.DRIVE_FILE), values_update),
        methods=["PUT"],
    ),
    Route(
        "/v4/spreadsheets/{id}/values/{range:path}",
        api((g.SPREADSHEETS_READONLY, g.DRIVE_READONLY, g.DRIVE_FILE), values_get),
    ),
    Route(
        "/calendar/v3/calendars/{calendar}/events", api((g.CALENDAR_EVENTS_READONLY,), events_list)
    ),
    Route(
        "/calendar/v3/calendars/{calendar}/events",
        api((g.CALENDAR_EVENTS,), events_insert),
        methods=["POST"],
    ),
    Route("/drive/v3/files", api((g.DRIVE_METADATA_READONLY, g.DRIVE_FILE), files_list)),
]
