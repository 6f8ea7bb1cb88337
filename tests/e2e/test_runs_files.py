"""Every files tool through an agent run with a scripted model: write (or create) a file, read it
back, see it in files:list and download it, for TXT, CSV, PDF, XLSX, PPTX and DOCX."""

from __future__ import annotations

from collections.abc import Callable

from starlette.testclient import TestClient

from tests.e2e.runs import call, create_agent, result, run_tools, scripted

Headers = dict[str, str]

FILES_TOOLS = {
    "files:list",
    "txt:read",
    "txt:write",
    "csv:read",
    "csv:write",
    "pdf:read",
    "pdf:create",
    "xlsx:read",
    "xlsx:write",
    "pptx:read",
    "pptx:create",
    "docx:read",
    "docx:create",
}


def listed(client: TestClient, headers: Headers, prefix: str) -> dict[str, int]:
    """path -> size of the user's files under `prefix`, as GET /files shows them."""
    response = client.get(f"/files?prefix={prefix}", headers=headers)
    assert response.status_code == 200, response.text
    return {entry["path"]: entry["size_bytes"] for entry in response.json()["files"]}


def download(client: TestClient, headers: Headers, path: str) -> bytes:
    response = client.get(f"/files/{path}", headers=headers)
    assert response.status_code == 200, response.text
    return response.content


def test_txt_write_append_read_and_list(
    client: TestClient, make_user: Callable[..., Headers]
) -> None:
    headers = make_user()
    text = "Tide log\nMonday: high water 12:31 — 3.2 m\n"
    [written, appended, read, part, files] = run_tools(
        client,
        headers,
        ["txt:write", "txt:read", "files:list"],
        call("txt:write", path="logs/tides.txt", content=text),
        call("txt:write", path="logs/tides.txt", content="Tuesday: 13:02\n", mode="append"),
        call("txt:read", path="logs/tides.txt"),
        call("txt:read", path="logs/tides.txt", max_bytes=8),
        call("files:list", prefix="logs/"),
    )
    size = len(text.encode())
    assert result(written) == {"path": "logs/tides.txt", "bytes_written": size}
    assert result(appended)["bytes_written"] == len(b"Tuesday: 13:02\n")
    whole = text + "Tuesday: 13:02\n"
    assert result(read) == {
        "path": "logs/tides.txt",
        "content": whole,
        "size_bytes": len(whole.encode()),
        "truncated": False,
    }
    assert (result(part)["content"], result(part)["truncated"]) == ("Tide log", True)
    [entry] = result(files)["files"]
    assert (entry["path"], entry["size_bytes"]) == ("logs/tides.txt", len(whole.encode()))
    assert result(files)["truncated"] is False
    assert download(client, headers, "logs/tides.txt").decode() == whole


def test_csv_write_then_read(client: TestClient, make_user: Callable[..., Headers]) -> None:
    headers = make_user()
    columns = ["species", "kg", "note"]
    rows = [
        {"species": "sardine", "kg": 12.5, "note": 'fresh, "silver"'},
        ["tuna", 40, "two\nlines"],
        {"species": "octopus", "kg": None},
    ]
    [written, read, paged, semicolons, semi_read] = run_tools(
        client,
        headers,
        ["csv:write", "csv:read"],
        call("csv:write", path="data/catch.csv", columns=columns, rows=rows),
        call("csv:read", path="data/catch.csv"),
        call("csv:read", path="data/catch.csv", offset=1, limit=1),
        call(
            "csv:write",
            path="data/boats.csv",
            columns=["name", "crew"],
            rows=[["Maria", 3], ["Estrela", 5]],
            delimiter=";",
        ),
        call("csv:read", path="data/boats.csv", delimiter=";", header=False),
    )
    assert result(written) == {"path": "data/catch.csv", "rows_written": 3}
    table = result(read)
    assert table["columns"] == columns
    assert table["rows"] == [
        {"species": "sardine", "kg": "12.5", "note": 'fresh, "silver"'},
        {"species": "tuna", "kg": "40", "note": "two\nlines"},
        {"species": "octopus", "kg": "", "note": ""},
    ]
    assert (table["row_count"], table["truncated"]) == (3, False)
    page = result(paged)
    assert page["rows"] == table["rows"][1:2]
    assert page["truncated"] is True
    assert result(semicolons)["rows_written"] == 2
    assert result(semi_read)["rows"] == [["name", "crew"], ["Maria", "3"], ["Estrela", "5"]]
    assert download(client, headers, "data/boats.csv").decode().splitlines() == [
        "name;crew",
        "Maria;3",
        "Estrela;5",
    ]


def test_pdf_create_then_read_pages(client: TestClient, make_user: Callable[..., Headers]) -> None:
    headers = make_user()
    sections = "\n\n".join(
        f"## Day {day}\n\nHigh water at {6 + day % 12}:15, low water six hours later. " * 3
        for day in range(1, 41)
    )
    text = f"# Tide report\n\nThe harbour floods twice a \u201clunar\u201d day.\n\n{sections}"
    [created, read, tail, files] = run_tools(
        client,
        headers,
        ["pdf:create", "pdf:read", "files:list"],
        call("pdf:create", path="reports/tides.pdf", title="Pasar Bay tides", text=text),
        call("pdf:read", path="reports/tides.pdf", last_page=1),
        call("pdf:read", path="reports/tides.pdf", first_page=2),
        call("files:list", prefix="reports/"),
    )
    made = result(created)
    assert made["path"] == "reports/tides.pdf"
    assert made["pages"] >= 2
    first = result(read)
    assert first["page_count"] == made["pages"]
    [page_one] = first["pages"]
    assert page_one["page"] == 1
    assert "Pasar Bay tides" in page_one["text"]
    assert 'The harbour floods twice a "lunar" day.' in page_one["text"]
    assert "Day 1" in page_one["text"]
    rest = result(tail)["pages"]
    assert [page["page"] for page in rest] == list(range(2, made["pages"] + 1))
    assert "Day 40" in rest[-1]["text"]
    assert result(files)["files"][0]["path"] == "reports/tides.pdf"
    assert result(files)["files"][0]["size_bytes"] == made["size_bytes"]
    data = download(client, headers, "reports/tides.pdf")
    assert data.startswith(b"%PDF-")
    assert len(data) == made["size_bytes"]


def test_xlsx_write_then_read_sheets_and_ranges(
    client: TestClient, make_user: Callable[..., Headers]
) -> None:
    headers = make_user()
    catch: list[list[object]] = [
        ["species", "kg", "fresh"],
        ["sardine", 12.5, True],
        ["tuna", 40, False],
        ['=HYPERLINK("http://evil.example")', None, None],
    ]
    [written, first_sheet, cells, boats] = run_tools(
        client,
        headers,
        ["xlsx:write", "xlsx:read"],
        call(
            "xlsx:write",
            path="data/catch.xlsx",
            sheets=[{"name": "Catch", "rows": catch}, {"name": "Boats", "rows": [["Maria", 3]]}],
        ),
        call("xlsx:read", path="data/catch.xlsx"),
        call("xlsx:read", path="data/catch.xlsx", sheet="Catch", range="A2:B3"),
        call("xlsx:read", path="data/catch.xlsx", sheet="Boats"),
    )
    assert result(written) | {"size_bytes": 0} == {
        "path": "data/catch.xlsx",
        "size_bytes": 0,
        "sheets": 2,
        "rows_written": 5,
    }
    sheet = result(first_sheet)
    assert (sheet["sheets"], sheet["sheet"]) == (["Catch", "Boats"], "Catch")
    assert (sheet["first_row"], sheet["first_column"]) == (1, "A")
    # Text starting with '=' stays text unless formulas were asked for.
    assert sheet["rows"] == [row[: 1 if row[1] is None else 3] for row in catch]
    assert (sheet["row_count"], sheet["truncated"]) == (4, False)
    window = result(cells)
    assert (window["first_row"], window["rows"]) == (2, [["sardine", 12.5], ["tuna", 40]])
    assert result(boats)["rows"] == [["Maria", 3]]
    assert download(client, headers, "data/catch.xlsx").startswith(b"PK")


def test_pptx_create_then_read_slides_and_notes(
    client: TestClient, make_user: Callable[..., Headers]
) -> None:
    headers = make_user()
    slides = [
        {
            "title": "Why two tides",
            "bullets": ["The Moon pulls two bulges", {"text": "the Sun helps", "level": 1}],
            "notes": "Mention spring tides.",
        },
        {"title": "When to sail", "bullets": ["At the ebb"]},
        {"title": "Questions"},
    ]
    [created, read, last] = run_tools(
        client,
        headers,
        ["pptx:create", "pptx:read"],
        call(
            "pptx:create",
            path="decks/tides.pptx",
            title="Pasar Bay tides",
            subtitle="Harbour briefing",
            slides=slides,
        ),
        call("pptx:read", path="decks/tides.pptx"),
        call("pptx:read", path="decks/tides.pptx", first_slide=4, limit=1),
    )
    made = result(created)
    assert (made["path"], made["slides"]) == ("decks/tides.pptx", 4)
    deck = result(read)
    assert (deck["slide_count"], deck["truncated"]) == (4, False)
    assert deck["slides"] == [
        {"slide": 1, "title": "Pasar Bay tides", "text": ["Harbour briefing"], "notes": ""},
        {
            "slide": 2,
            "title": "Why two tides",
            "text": ["The Moon pulls two bulges", "the Sun helps"],
            "notes": "Mention spring tides.",
        },
        {"slide": 3, "title": "When to sail", "text": ["At the ebb"], "notes": ""},
        {"slide": 4, "title": "Questions", "text": [], "notes": ""},
    ]
    assert result(last)["slides"] == deck["slides"][3:]
    assert len(download(client, headers, "decks/tides.pptx")) == made["size_bytes"]


def test_docx_create_then_read_blocks(
    client: TestClient, make_user: Callable[..., Headers]
) -> None:
    headers = make_user()
    blocks = [
        {"type": "heading", "text": "Basics", "level": 1},
        {"type": "paragraph", "text": "Two high tides every lunar day."},
        {"type": "bullets", "items": ["spring tides", "neap tides"]},
        {"type": "bullets", "items": ["check the table", "plan the trip"], "numbered": True},
        {"type": "table", "rows": [["time", "height"], ["06:12", "0.4 m"]], "header": True},
    ]
    [created, read, window] = run_tools(
        client,
        headers,
        ["docx:create", "docx:read"],
        call("docx:create", path="docs/tides.docx", title="Tide guide", blocks=blocks),
        call("docx:read", path="docs/tides.docx"),
        call("docx:read", path="docs/tides.docx", offset=2, limit=2),
    )
    assert result(created) | {"size_bytes": 0} == {
        "path": "docs/tides.docx",
        "size_bytes": 0,
        "blocks": 5,
    }
    document = result(read)
    assert document["truncated"] is False
    assert [
        (block["type"], block.get("text", block.get("rows"))) for block in document["blocks"]
    ] == [
        ("heading", "Tide guide"),
        ("heading", "Basics"),
        ("paragraph", "Two high tides every lunar day."),
        ("list_item", "spring tides"),
        ("list_item", "neap tides"),
        ("list_item", "check the table"),
        ("list_item", "plan the trip"),
        ("table", [["time", "height"], ["06:12", "0.4 m"]]),
    ]
    assert document["blocks"][1]["level"] == 1
    assert result(window)["blocks"] == document["blocks"][2:4]
    assert result(window)["truncated"] is True
    assert download(client, headers, "docs/tides.docx").startswith(b"PK")


def test_files_list_shows_what_every_tool_wrote(
    client: TestClient, make_user: Callable[..., Headers]
) -> None:
    headers = make_user()
    writes = [
        call("txt:write", path="out/a.txt", content="note"),
        call("csv:write", path="out/b.csv", columns=["x"], rows=[[1]]),
        call("pdf:create", path="out/c.pdf", text="A page."),
        call("xlsx:write", path="out/d.xlsx", sheets=[{"name": "S", "rows": [[1]]}]),
        call("pptx:create", path="out/e.pptx", slides=[{"title": "One"}]),
        call("docx:create", path="out/f.docx", blocks=[{"type": "paragraph", "text": "Hi"}]),
    ]
    steps = run_tools(
        client,
        headers,
        sorted(FILES_TOOLS),
        *writes,
        call("files:list"),
        call("files:list", prefix="out/", limit=2),
    )
    *made, everything, first_two = steps
    for step in made:
        result(step)
    files = result(everything)["files"]
    paths = ["out/a.txt", "out/b.csv", "out/c.pdf", "out/d.xlsx", "out/e.pptx", "out/f.docx"]
    assert [entry["path"] for entry in files] == paths
    assert all(entry["size_bytes"] > 0 and entry["modified"] for entry in files)
    assert {entry["path"]: entry["size_bytes"] for entry in files} == listed(
        client, headers, "out/"
    )
    assert [entry["path"] for entry in result(first_two)["files"]] == paths[:2]
    assert result(first_two)["truncated"] is True
    # Another user sees none of them.
    assert listed(client, make_user(), "") == {}


def test_a_run_may_use_all_its_model_calls(
    client: TestClient, make_user: Callable[..., Headers]
) -> None:
    headers = make_user()
    replies = [call("txt:write", path=f"log/{i}.txt", content=str(i)) for i in range(8)]
    config = scripted(*replies) | {"limits": {"max_steps": 10}}  # 9 model calls
    agent_id = create_agent(client, headers, ["txt:write"], config)
    response = client.post(f"/agents/{agent_id}/execute", json={"input": "go"}, headers=headers)
    run = response.json()
    assert run["status"] == "succeeded", run["error"]
    assert sum(step["type"] == "model_call" for step in run["steps"]) == 9
