"""Each tool against the emulator (real HTTP on 127.0.0.1) through Registry.invoke, and
Google's errors mapped for the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pasar_core.errors import ReauthorizationRequired, ToolError, ToolInputInvalid
from pasar_core.registry import Registry
from pasar_core.specs import ToolContext
from pasar_google_workspace import provider as g
from pasar_google_workspace.testing import RunningEmulator

from .conftest import context_with

pytestmark = pytest.mark.anyio


def headers_of(message: dict[str, Any]) -> set[tuple[str, str]]:
    return {(header["name"], header["value"]) for header in message["payload"]["headers"]}


async def test_gmail_read_search_and_one_message(registry: Registry, ctx: ToolContext) -> None:
    found = await registry.invoke("gmail:read", ctx, {"query": "from:ana budget"})
    assert [m["subject"] for m in found["messages"]] == ["Re: Q1 budget", "Q1 budget"]
    one = await registry.invoke("gmail:read", ctx, {"message_id": "m2"})
    assert one["messages"][0]["body"] == "Are you free at noon?"
    assert one["messages"][0]["from"].startswith("Bo Chen")


async def test_gmail_draft_and_send(
    registry: Registry, ctx: ToolContext, google_emulator: RunningEmulator
) -> None:
    args = {"to": ["ana@example.com"], "subject": "Totals", "body": "Looks good."}
    draft = await registry.invoke("gmail:draft", ctx, args)
    drafted = google_emulator.state.drafts[draft["draft_id"]]["message"]
    assert drafted["id"] == draft["message_id"]
    assert drafted["labelIds"] == ["DRAFT"]
    assert headers_of(drafted) >= {("To", "ana@example.com"), ("Subject", "Totals")}
    assert drafted["snippet"].startswith("Looks good.")
    sent = await registry.invoke("gmail:send", ctx, args)
    stored = google_emulator.state.messages[sent["message_id"]]
    assert stored["labelIds"] == ["SENT"]
    assert headers_of(stored) >= {("To", "ana@example.com"), ("Subject", "Totals")}
    assert stored["snippet"].startswith("Looks good.")
    with pytest.raises(ToolInputInvalid):  # no header injection
        await registry.invoke("gmail:send", ctx, {**args, "subject": "a\r\nBcc: x@evil.test"})


async def test_docs_read_create_append(
    registry: Registry, ctx: ToolContext, google_emulator: RunningEmulator
) -> None:
    read = await registry.invoke("docs:read", ctx, {"document_id": "doc1"})
    assert read["title"] == "Meeting notes"
    assert "Budget review" in read["text"]
    made = await registry.invoke("docs:create", ctx, {"title": "Plan", "text": "Step 1\n"})
    await registry.invoke("docs:append", ctx, {"document_id": made["document_id"],
                                               "text": "Step 2\n"})  # fmt: skip
    again = await registry.invoke("docs:read", ctx, {"document_id": made["document_id"]})
    assert again["text"] == "Step 1\nStep 2\n\n"
    with pytest.raises(ToolError, match="not found"):
        await registry.invoke("docs:read", ctx, {"document_id": "nope"})


async def test_sheets_read_write_append_list(registry: Registry, ctx: ToolContext) -> None:
    sheet = {"spreadsheet_id": "sheet1"}
    read = await registry.invoke("sheets:read", ctx, {**sheet, "range": "Sheet1!A1:B2"})
    assert read == {"range": "Sheet1!A1:B2", "values": [["Item", "Cost"], ["Rent", "1200"]]}
    updated = await registry.invoke(
        "sheets:write", ctx, {**sheet, "range": "Sheet1!B2", "values": [[1300]]}
    )
    assert updated["updated_cells"] == 1
    appended = await registry.invoke(
        "sheets:write", ctx,
        {**sheet, "range": "Sheet1!A1", "values": [["Food", 300], ["Bus", None]],
         "mode": "append"},
    )  # fmt: skip
    assert appended["updated_rows"] == 2
    assert appended["updated_range"] == "Sheet1!A3:B4"
    whole = await registry.invoke("sheets:read", ctx, {**sheet, "range": "Sheet1"})
    assert whole["values"][1:] == [["Rent", "1300"], ["Food", "300"], ["Bus", ""]]
    listed = await registry.invoke("sheets:list", ctx, {"name_contains": "budget"})
    assert [s["name"] for s in listed["spreadsheets"]] == ["Budget 2025"]


async def test_calendar_read_and_create(
    registry: Registry, ctx: ToolContext, google_emulator: RunningEmulator
) -> None:
    events = await registry.invoke("calendar:read", ctx, {"time_min": "2025-03-04T00:00:00Z"})
    assert [e["summary"] for e in events["events"]] == ["Budget review"]
    made = await registry.invoke("calendar:create", ctx, {
        "summary": "Retro", "start": "2025-03-05T10:00:00Z", "end": "2025-03-05T11:00:00Z",
        "attendees": ["bo@example.com"],
    })  # fmt: skip
    assert made["attendees"] == ["bo@example.com"]
    stored = google_emulator.state.events[made["id"]]
    assert (stored["summary"], stored["start"]["dateTime"], stored["end"]["dateTime"]) == (
        "Retro", "2025-03-05T10:00:00Z", "2025-03-05T11:00:00Z",
    )  # fmt: skip
    assert stored["attendees"] == [{"email": "bo@example.com"}]
    with pytest.raises(ToolError, match="timeRangeEmpty"):
        await registry.invoke("calendar:create", ctx, {
            "summary": "Backwards", "start": "2025-03-05T11:00:00Z", "end": "2025-03-05T10:00:00Z"
        })  # fmt: skip


async def test_drive_search(registry: Registry, ctx: ToolContext) -> None:
    found = await registry.invoke("drive:search", ctx, {"name_contains": "notes"})
    assert [f["id"] for f in found["files"]] == ["doc1"]
    quoted = await registry.invoke("drive:search", ctx, {"name_contains": "it's"})
    assert quoted["files"] == []


async def test_insufficient_scopes_ask_to_reconnect(
    registry: Registry, google_emulator: RunningEmulator, tmp_path: Path
) -> None:
    ctx = context_with(google_emulator, tmp_path, g.GMAIL_READONLY)
    with pytest.raises(ReauthorizationRequired, match="lacks a scope"):
        await registry.invoke("gmail:send", ctx, {"to": ["a@b.c"], "subject": "s", "body": "b"})
    broader = context_with(google_emulator, tmp_path, g.GMAIL_MODIFY)  # covers send
    sent = await registry.invoke("gmail:send", broader,
                                 {"to": ["a@b.c"], "subject": "s", "body": "b"})  # fmt: skip
    stored = google_emulator.state.messages[sent["message_id"]]
    assert (stored["labelIds"], stored["snippet"]) == (["SENT"], "b\n")
    assert ("To", "a@b.c") in headers_of(stored)


async def test_revoked_token_asks_to_reconnect(
    registry: Registry, ctx: ToolContext, google_emulator: RunningEmulator
) -> None:
    google_emulator.state.expire_access_tokens()
    with pytest.raises(ReauthorizationRequired, match="rejected the access token"):
        await registry.invoke("gmail:read", ctx, {})


async def test_rate_limit_carries_retry_after(
    registry: Registry, ctx: ToolContext, google_emulator: RunningEmulator
) -> None:
    google_emulator.state.inject("/calendar/", 429, retry_after=7)
    with pytest.raises(ToolError) as caught:
        await registry.invoke("calendar:read", ctx, {})
    assert caught.value.details == {"retry_after": 7}
    retried = await registry.invoke("calendar:read", ctx, {})  # the fault was injected once
    assert [event["summary"] for event in retried["events"]] == ["Standup", "Budget review"]


async def test_without_credentials_the_tool_asks_to_connect(
    registry: Registry, tmp_path: Path
) -> None:
    ctx = ToolContext(user_id="u1", storage_root=tmp_path)
    with pytest.raises(ReauthorizationRequired):
        await registry.invoke("docs:read", ctx, {"document_id": "doc1"})
