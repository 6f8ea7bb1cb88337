"""Every document tool end to end through Registry.invoke, on the local store and on S3."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import docx
import openpyxl
import pptx
import pytest
from fpdf import FPDF
from hypothesis import given, settings
from hypothesis import strategies as st
from pasar_core.errors import ToolError, ToolInputInvalid
from pasar_core.objects import S3ObjectStore
from pasar_core.registry import Registry
from pasar_core.specs import ToolContext
from pasar_files.guard import Deadline
from pasar_files.pdf_tools import read_pdf
from pasar_files.store import store_of
from pptx.util import Inches

pytestmark = pytest.mark.anyio


async def put(ctx: ToolContext, key: str, data: bytes) -> None:
    await store_of(ctx).put(ctx.user_id, key, data)


async def test_pdf_create_then_read(registry: Registry, store_ctx: ToolContext) -> None:
    text = "# Quarterly report\n\nRevenue grew.\nA lot.\n\n- first\n  - nested\n1. one\n2. two\n"
    made = await registry.invoke(
        "pdf:create", store_ctx, {"path": "out/r.pdf", "text": text, "title": "Q1 “draft”"}
    )
    assert made["path"] == "out/r.pdf"
    assert made["pages"] == 1
    assert made["replaced_characters"] == 0
    assert made["size_bytes"] == (await store_of(store_ctx).stat("u1", "out/r.pdf")).size
    read = await registry.invoke("pdf:read", store_ctx, {"path": "out/r.pdf"})
    page = read["pages"][0]["text"]
    for fragment in ('Q1 "draft"', "Quarterly report", "Revenue grew. A lot.", "nested", "2. two"):
        assert fragment in page
    assert read["page_count"] == 1
    assert read["truncated"] is False


async def test_pdf_create_replaces_what_the_fonts_lack(
    registry: Registry, store_ctx: ToolContext
) -> None:
    made = await registry.invoke("pdf:create", store_ctx, {"path": "u.pdf", "text": "café 日本"})
    assert made["replaced_characters"] == 2
    read = await registry.invoke("pdf:read", store_ctx, {"path": "u.pdf"})
    assert "café ??" in read["pages"][0]["text"]


def _fpdf_pages(count: int) -> bytes:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for number in range(1, count + 1):
        pdf.add_page()
        pdf.cell(0, 10, f"This is page {number}")
    return bytes(pdf.output())


async def test_pdf_read_page_ranges_and_caps(registry: Registry, store_ctx: ToolContext) -> None:
    await put(store_ctx, "p.pdf", _fpdf_pages(5))
    read = await registry.invoke(
        "pdf:read", store_ctx, {"path": "p.pdf", "first_page": 2, "last_page": 3}
    )
    assert [(p["page"], p["text"]) for p in read["pages"]] == [
        (2, "This is page 2"),
        (3, "This is page 3"),
    ]
    assert read["page_count"] == 5
    capped = await registry.invoke("pdf:read", store_ctx, {"path": "p.pdf", "max_chars": 20})
    assert capped["truncated"] is True
    assert sum(len(p["text"]) for p in capped["pages"]) == 20
    with pytest.raises(ToolError, match="has 5 pages; first_page 6"):
        await registry.invoke("pdf:read", store_ctx, {"path": "p.pdf", "first_page": 6})
    with pytest.raises(ToolError, match="before first_page"):
        await registry.invoke(
            "pdf:read", store_ctx, {"path": "p.pdf", "first_page": 3, "last_page": 2}
        )


_FIVE_PAGES = _fpdf_pages(5)


@settings(max_examples=50, deadline=None)
@given(first=st.integers(1, 7), span=st.integers(0, 7), max_chars=st.integers(1, 100))
def test_pdf_page_ranges_property(first: int, span: int, max_chars: int) -> None:
    deadline = Deadline.after(30)
    if first > 5:
        with pytest.raises(ToolError, match="past its end"):
            read_pdf(
                _FIVE_PAGES,
                "p.pdf",
                first=first,
                last=first + span,
                max_chars=max_chars,
                deadline=deadline,
            )
        return
    result = read_pdf(
        _FIVE_PAGES, "p.pdf", first=first, last=first + span, max_chars=max_chars, deadline=deadline
    )
    pages = [p["page"] for p in result["pages"]]
    assert pages == list(range(first, first + len(pages)))
    assert pages[-1] <= min(first + span, 5)
    assert sum(len(p["text"]) for p in result["pages"]) <= max_chars
    complete = pages[-1] == min(first + span, 5) and all(
        p["text"] == f"This is page {p['page']}" for p in result["pages"]
    )
    assert result["truncated"] is not complete


async def test_xlsx_write_then_read(registry: Registry, store_ctx: ToolContext) -> None:
    sheets: list[dict[str, Any]] = [
        {
            "name": "Data",
            "rows": [
                ["name", "n", "ok", "formula"],
                ["Zoë", 1.5, True, "=1+1"],
                ["b", 2, None, "x"],
            ],
        },
        {"name": "Formulas", "rows": [["=SUM(1,2)"]]},
    ]
    made = await registry.invoke("xlsx:write", store_ctx, {"path": "w.xlsx", "sheets": sheets})
    assert (made["sheets"], made["rows_written"]) == (2, 4)
    read = await registry.invoke("xlsx:read", store_ctx, {"path": "w.xlsx"})
    assert read["sheets"] == ["Data", "Formulas"]
    assert read["rows"] == [
        ["name", "n", "ok", "formula"],
        ["Zoë", 1.5, True, "=1+1"],
        ["b", 2, None, "x"],
    ]
    ranged = await registry.invoke(
        "xlsx:read", store_ctx, {"path": "w.xlsx", "sheet": "Data", "range": "B2:C3"}
    )
    assert ranged["rows"] == [[1.5, True], [2, None]]
    assert (ranged["first_row"], ranged["first_column"]) == (2, "B")
    limited = await registry.invoke(
        "xlsx:read", store_ctx, {"path": "w.xlsx", "limit": 1, "offset": 1}
    )
    assert limited["rows"] == [["Zoë", 1.5, True, "=1+1"]]
    assert limited["truncated"] is True
    with pytest.raises(ToolError, match="no sheet 'Nope'"):
        await registry.invoke("xlsx:read", store_ctx, {"path": "w.xlsx", "sheet": "Nope"})
    with pytest.raises(ToolError, match=r"twice|named"):
        await registry.invoke(
            "xlsx:write",
            store_ctx,
            {"path": "d.xlsx", "sheets": [{"name": "A", "rows": []}, {"name": "a", "rows": []}]},
        )
    with pytest.raises(ToolInputInvalid):
        await registry.invoke(
            "xlsx:write", store_ctx, {"path": "d.xlsx", "sheets": [{"name": "a/b", "rows": []}]}
        )


async def test_xlsx_formulas_only_when_asked(registry: Registry, store_ctx: ToolContext) -> None:
    args = {"path": "f.xlsx", "sheets": [{"name": "S", "rows": [["=1+2"]]}], "formulas": True}
    await registry.invoke("xlsx:write", store_ctx, args)
    data = await store_of(store_ctx).get("u1", "f.xlsx", max_bytes=10**6)
    book = openpyxl.load_workbook(io.BytesIO(data))
    assert book["S"]["A1"].data_type == "f"
    book.close()


async def test_xlsx_made_by_openpyxl(registry: Registry, store_ctx: ToolContext) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Sales"
    sheet.append(["day", "amount"])
    sheet.append([dt.date(2026, 1, 2), 10])
    sheet["D40"] = "far away"
    out = io.BytesIO()
    book.save(out)
    await put(store_ctx, "lib.xlsx", out.getvalue())
    read = await registry.invoke("xlsx:read", store_ctx, {"path": "lib.xlsx", "range": "A1:B2"})
    assert read["rows"] == [["day", "amount"], ["2026-01-02T00:00:00", 10]]
    whole = await registry.invoke("xlsx:read", store_ctx, {"path": "lib.xlsx"})
    assert whole["rows"][-1] == [None, None, None, "far away"]
    assert whole["row_count"] == 40


async def test_pptx_create_then_read(registry: Registry, store_ctx: ToolContext) -> None:
    args = {
        "path": "deck.pptx",
        "title": "Plan",
        "subtitle": "2026",
        "slides": [
            {
                "title": "Goals",
                "bullets": ["grow", {"text": "hire", "level": 1}],
                "notes": "say hi",
            },
            {"title": "Empty"},
        ],
    }
    made = await registry.invoke("pptx:create", store_ctx, args)
    assert made["slides"] == 3
    read = await registry.invoke("pptx:read", store_ctx, {"path": "deck.pptx"})
    assert read["slide_count"] == 3
    assert read["slides"][0] == {"slide": 1, "title": "Plan", "text": ["2026"], "notes": ""}
    assert read["slides"][1] == {
        "slide": 2,
        "title": "Goals",
        "text": ["grow", "hire"],
        "notes": "say hi",
    }
    one = await registry.invoke(
        "pptx:read", store_ctx, {"path": "deck.pptx", "first_slide": 2, "limit": 1}
    )
    assert [s["slide"] for s in one["slides"]] == [2]
    assert one["truncated"] is True


async def test_pptx_made_by_python_pptx(registry: Registry, store_ctx: ToolContext) -> None:
    deck = pptx.Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[5])
    assert slide.shapes.title is not None
    slide.shapes.title.text = "Table slide"
    table = slide.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(4), Inches(1)).table
    table.cell(0, 0).text, table.cell(0, 1).text = "k", "v"
    table.cell(1, 0).text, table.cell(1, 1).text = "a", "1"
    box = slide.shapes.add_textbox(Inches(1), Inches(4), Inches(3), Inches(1))
    box.text_frame.text = "loose text"
    out = io.BytesIO()
    deck.save(out)
    await put(store_ctx, "lib.pptx", out.getvalue())
    read = await registry.invoke("pptx:read", store_ctx, {"path": "lib.pptx"})
    assert read["slides"][0]["title"] == "Table slide"
    assert read["slides"][0]["text"] == ["k | v", "a | 1", "loose text"]


async def test_docx_create_then_read(registry: Registry, store_ctx: ToolContext) -> None:
    blocks = [
        {"type": "heading", "text": "Intro", "level": 2},
        {"type": "paragraph", "text": "Hello\x07 world"},
        {"type": "bullets", "items": ["a", "b"]},
        {"type": "bullets", "items": ["first"], "numbered": True},
        {"type": "table", "rows": [["h1", "h2"], ["1"]], "header": True},
    ]
    made = await registry.invoke(
        "docx:create", store_ctx, {"path": "d.docx", "title": "Doc", "blocks": blocks}
    )
    assert made["blocks"] == 5
    read = await registry.invoke("docx:read", store_ctx, {"path": "d.docx"})
    assert read["blocks"] == [
        {"type": "heading", "level": 0, "text": "Doc"},
        {"type": "heading", "level": 2, "text": "Intro"},
        {"type": "paragraph", "style": "Normal", "text": "Hello world"},
        {"type": "list_item", "style": "List Bullet", "text": "a"},
        {"type": "list_item", "style": "List Bullet", "text": "b"},
        {"type": "list_item", "style": "List Number", "text": "first"},
        {"type": "table", "rows": [["h1", "h2"], ["1", ""]]},
    ]
    page = await registry.invoke(
        "docx:read", store_ctx, {"path": "d.docx", "offset": 2, "limit": 2}
    )
    assert [b["text"] for b in page["blocks"]] == ["Hello world", "a"]
    assert page["truncated"] is True


async def test_docx_made_by_python_docx(registry: Registry, store_ctx: ToolContext) -> None:
    document = docx.Document()
    document.add_heading("Made directly", level=1)
    document.add_paragraph("Body text.")
    table = document.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "x", "y"
    out = io.BytesIO()
    document.save(out)
    await put(store_ctx, "lib.docx", out.getvalue())
    read = await registry.invoke("docx:read", store_ctx, {"path": "lib.docx"})
    assert read["blocks"] == [
        {"type": "heading", "level": 1, "text": "Made directly"},
        {"type": "paragraph", "style": "Normal", "text": "Body text."},
        {"type": "table", "rows": [["x", "y"]]},
    ]


async def test_create_tools_respect_overwrite_and_extensions(
    registry: Registry, store_ctx: ToolContext
) -> None:
    await registry.invoke("pdf:create", store_ctx, {"path": "a.pdf", "text": "one"})
    with pytest.raises(ToolError, match="already exists"):
        await registry.invoke(
            "pdf:create", store_ctx, {"path": "a.pdf", "text": "two", "overwrite": False}
        )
    with pytest.raises(ToolInputInvalid):
        await registry.invoke("docx:create", store_ctx, {"path": "a.pdf", "blocks": []})
    with pytest.raises(ToolError, match=r"must not contain '\.\.'"):
        await registry.invoke("pdf:create", store_ctx, {"path": "../x.pdf", "text": "x"})
    with pytest.raises(ToolError, match="does not exist"):
        await registry.invoke("docx:read", store_ctx, {"path": "missing.docx"})


async def test_files_list(registry: Registry, store_ctx: ToolContext) -> None:
    await registry.invoke("pdf:create", store_ctx, {"path": "reports/a.pdf", "text": "x"})
    await registry.invoke(
        "xlsx:write", store_ctx, {"path": "reports/b.xlsx", "sheets": [{"name": "S", "rows": []}]}
    )
    await registry.invoke("docx:create", store_ctx, {"path": "notes.docx", "blocks": []})
    listed = await registry.invoke("files:list", store_ctx, {})
    assert [f["path"] for f in listed["files"]] == ["notes.docx", "reports/a.pdf", "reports/b.xlsx"]
    assert all(f["size_bytes"] > 0 and f["modified"].endswith("+00:00") for f in listed["files"])
    assert listed["truncated"] is False
    some = await registry.invoke("files:list", store_ctx, {"prefix": "reports/", "limit": 1})
    assert [f["path"] for f in some["files"]] == ["reports/a.pdf"]
    assert some["truncated"] is True


async def test_txt_csv_and_documents_share_one_folder(registry: Registry, ctx: ToolContext) -> None:
    """Without an explicit store, the document tools use the TXT/CSV tools' storage root."""
    await registry.invoke("txt:write", ctx, {"path": "n/a.txt", "content": "hi"})
    await registry.invoke("pdf:create", ctx, {"path": "n/b.pdf", "text": "hello"})
    listed = await registry.invoke("files:list", ctx, {})
    assert [f["path"] for f in listed["files"]] == ["n/a.txt", "n/b.pdf"]
    assert (ctx.storage_root / "n" / "b.pdf").read_bytes().startswith(b"%PDF-")


async def test_txt_and_csv_share_the_store_with_the_document_tools(
    registry: Registry, store_ctx: ToolContext
) -> None:
    """TXT and CSV files live in the same store as the documents (S3 when configured)."""
    await registry.invoke("txt:write", store_ctx, {"path": "n/a.txt", "content": "hi\n"})
    args = {"path": "n/a.txt", "content": "there\n", "mode": "append"}
    await registry.invoke("txt:write", store_ctx, args)
    await registry.invoke("pdf:create", store_ctx, {"path": "n/b.pdf", "text": "hello"})
    await registry.invoke("docx:create", store_ctx, {"path": "n/c.docx", "blocks": []})
    rows = [{"x": 1, "y": "é"}, [2, None]]
    await registry.invoke(
        "csv:write", store_ctx, {"path": "n/d.csv", "columns": ["x", "y"], "rows": rows}
    )
    await registry.invoke(
        "csv:write",
        store_ctx,
        {"path": "n/d.csv", "columns": ["x", "y"], "rows": [[3, "z"]], "mode": "append"},
    )
    listed = await registry.invoke("files:list", store_ctx, {"prefix": "n/"})
    assert {f["path"]: f["size_bytes"] for f in listed["files"]} == {
        "n/a.txt": 9,
        "n/b.pdf": (await store_of(store_ctx).stat("u1", "n/b.pdf")).size,
        "n/c.docx": (await store_of(store_ctx).stat("u1", "n/c.docx")).size,
        "n/d.csv": len("x,y\n1,é\n2,\n3,z\n".encode()),
    }
    assert await store_of(store_ctx).get("u1", "n/a.txt", max_bytes=100) == b"hi\nthere\n"
    read = await registry.invoke("txt:read", store_ctx, {"path": "n/a.txt"})
    assert read["content"] == "hi\nthere\n"
    table = await registry.invoke("csv:read", store_ctx, {"path": "n/d.csv"})
    assert table["rows"] == [{"x": "1", "y": "é"}, {"x": "2", "y": ""}, {"x": "3", "y": "z"}]
    # Each tool sees the others' files: a text file is no PDF, a PDF no text, a name is taken.
    with pytest.raises(ToolError, match="not a readable PDF"):
        await registry.invoke("pdf:read", store_ctx, {"path": "n/a.txt"})
    with pytest.raises(ToolError, match=r"'n/d\.csv' is not a valid DOCX"):
        await registry.invoke("docx:read", store_ctx, {"path": "n/d.csv"})
    with pytest.raises(ToolError, match=r"'n/b\.pdf' is not valid utf-8 text"):
        await registry.invoke("txt:read", store_ctx, {"path": "n/b.pdf"})
    with pytest.raises(ToolError, match="already exists"):
        await registry.invoke(
            "docx:create", store_ctx, {"path": "n/c.docx", "blocks": [], "overwrite": False}
        )
    await registry.invoke("txt:write", store_ctx, {"path": "n/b.pdf", "content": "replaced"})
    with pytest.raises(ToolError, match="not a readable PDF"):
        await registry.invoke("pdf:read", store_ctx, {"path": "n/b.pdf"})
    if isinstance(store_ctx.objects, S3ObjectStore):  # nothing went to the local folder
        assert not store_ctx.storage_root.exists()
    else:
        assert (store_ctx.storage_root / "n" / "a.txt").read_bytes() == b"hi\nthere\n"
