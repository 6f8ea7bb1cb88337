"""A corpus of hostile and broken files: every one must end in a clear ToolError, nothing leaks."""

from __future__ import annotations

import http.server
import io
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import docx
import openpyxl
import pptx
import pytest
from pasar_core.errors import ToolError
from pasar_core.registry import Registry
from pasar_core.specs import ToolContext
from pasar_files import pdf_tools
from pasar_files.guard import Deadline, bad_member_name
from pasar_files.pdf_tools import read_pdf
from pasar_files.store import store_of
from pypdf import PdfWriter

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024
CANARY = "CANARY-7f3a9c-do-not-leak"


def _save(document: object) -> bytes:
    out = io.BytesIO()
    document.save(out)  # type: ignore[attr-defined]
    return out.getvalue()


def valid_docx() -> bytes:
    document = docx.Document()
    document.add_paragraph("hello")
    return _save(document)


def valid_xlsx() -> bytes:
    book = openpyxl.Workbook()
    book.active.append(["hello"])  # type: ignore[union-attr]
    return _save(book)


def valid_pptx() -> bytes:
    deck = pptx.Presentation()
    deck.slides.add_slide(deck.slide_layouts[0]).shapes.title.text = "hello"
    return _save(deck)


MAIN_PART = {
    "docx": ("word/document.xml", valid_docx),
    "xlsx": ("xl/worksheets/sheet1.xml", valid_xlsx),
    "pptx": ("ppt/slides/slide1.xml", valid_pptx),
}


def rebuild(
    data: bytes,
    replace: dict[str, bytes] | None = None,
    extra: list[tuple[str, bytes]] | None = None,
) -> bytes:
    """The same package with some parts' bytes replaced and extra parts appended."""
    replace = replace or {}
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            target.writestr(info.filename, replace.get(info.filename, source.read(info)))
        for name, body in extra or ():
            target.writestr(name, body)
    return out.getvalue()


def with_doctype(kind: str, doctype: str, body_entity: str = "") -> bytes:
    """A package whose main part declares `doctype` (and uses an entity in its text)."""
    part, make = MAIN_PART[kind]
    data = make()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        xml = archive.read(part).decode()
    head, sep, rest = xml.partition("?>")
    xml = f"{head}{sep}{doctype}{rest}" if sep else doctype + xml
    if body_entity:
        xml = xml.replace("hello", body_entity, 1)
    return rebuild(data, {part: xml.encode()})


BILLION_LAUGHS = (
    '<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(2, 10)
    ).replace("&lol1;", "&lol;")
    + "]>"
)


class _Canary:
    """An HTTP server on 127.0.0.1 that records every request it gets."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        canary = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                canary.requests.append(self.path)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b'<!ENTITY leak "fetched">')

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def canary_http() -> Iterator[_Canary]:
    server = _Canary()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def canary_file(tmp_path: Path) -> Path:
    path = tmp_path / "canary.txt"
    path.write_text(CANARY)
    return path


async def read_as(registry: Registry, ctx: ToolContext, kind: str, data: bytes) -> str:
    """Store `data` as a file of `kind`, read it with the kind's read tool; the ToolError text."""
    key = f"hostile.{kind}"
    await store_of(ctx).put(ctx.user_id, key, data)
    with pytest.raises(ToolError) as caught:
        await registry.invoke(f"{kind}:read", ctx, {"path": key})
    return str(caught.value)


@pytest.mark.parametrize("kind", ["docx", "xlsx", "pptx"])
async def test_billion_laughs_is_refused(registry: Registry, ctx: ToolContext, kind: str) -> None:
    message = await read_as(registry, ctx, kind, with_doctype(kind, BILLION_LAUGHS, "&lol9;"))
    assert "DOCTYPE" in message


@pytest.mark.parametrize("kind", ["docx", "xlsx", "pptx"])
async def test_xxe_file_is_refused_and_never_read(
    registry: Registry, ctx: ToolContext, kind: str, canary_file: Path
) -> None:
    doctype = f'<!DOCTYPE x [<!ENTITY xxe SYSTEM "file://{canary_file}">]>'
    message = await read_as(registry, ctx, kind, with_doctype(kind, doctype, "&xxe;"))
    assert "DOCTYPE" in message
    assert CANARY not in message


@pytest.mark.parametrize("kind", ["docx", "xlsx", "pptx"])
@pytest.mark.parametrize("form", ["system", "parameter", "entity"])
async def test_external_dtd_is_never_fetched(
    registry: Registry, ctx: ToolContext, kind: str, form: str, canary_http: _Canary
) -> None:
    doctype = {
        "system": f'<!DOCTYPE x SYSTEM "{canary_http.url}/evil.dtd">',
        "parameter": f'<!DOCTYPE x [<!ENTITY % remote SYSTEM "{canary_http.url}/p.dtd"> %remote;]>',
        "entity": f'<!DOCTYPE x [<!ENTITY leak SYSTEM "{canary_http.url}/e.xml">]>',
    }[form]
    message = await read_as(registry, ctx, kind, with_doctype(kind, doctype, "&leak;"))
    assert "DOCTYPE" in message
    assert canary_http.requests == []


async def test_doctype_hidden_in_any_part_or_encoding_is_refused(
    registry: Registry, ctx: ToolContext
) -> None:
    hidden = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'
    as_image = rebuild(valid_docx(), extra=[("word/media/image1.png", hidden)])
    assert "DOCTYPE" in await read_as(registry, ctx, "docx", as_image)
    utf16 = rebuild(
        valid_docx(),
        extra=[
            (
                "customXml/item9.xml",
                hidden.decode().replace('"1.0"', '"1.0" encoding="utf-16"').encode("utf-16"),
            )
        ],
    )
    assert "DOCTYPE" in await read_as(registry, ctx, "docx", utf16)


async def test_zip_bombs_are_refused(registry: Registry, ctx: ToolContext) -> None:
    ratio = rebuild(valid_docx(), extra=[("word/media/zeros.bin", bytes(5 * MIB))])
    assert "zip bomb" in await read_as(registry, ctx, "docx", ratio)
    huge = rebuild(valid_xlsx(), extra=[("xl/media/zeros.bin", bytes(101 * MIB))])
    assert "unpacks to more than 100 MiB" in await read_as(registry, ctx, "xlsx", huge)


async def test_total_size_cap(
    registry: Registry, ctx: ToolContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pasar_files import guard

    monkeypatch.setattr(guard, "ZIP_MAX_TOTAL_BYTES", 20_000)
    assert "unpacks to more than" in await read_as(registry, ctx, "pptx", valid_pptx())


async def test_too_many_members_is_refused(registry: Registry, ctx: ToolContext) -> None:
    many = rebuild(valid_pptx(), extra=[(f"ppt/junk/{i}.bin", b"x") for i in range(2_001)])
    assert "parts; the limit is 2000" in await read_as(registry, ctx, "pptx", many)


@pytest.mark.parametrize(
    "name", ["../evil.xml", "word/../../evil.xml", "/abs.xml", "C:/x.xml", "a\\..\\b.xml"]
)
async def test_traversal_member_names_are_refused(
    registry: Registry, ctx: ToolContext, name: str
) -> None:
    bad = rebuild(valid_docx(), extra=[(name, b"<x/>")])
    assert "points outside the package" in await read_as(registry, ctx, "docx", bad)


def test_member_name_rules() -> None:
    assert not bad_member_name("word/document.xml")
    assert not bad_member_name("[Content_Types].xml")
    assert not bad_member_name("a/..b/c..")
    for bad in ("a/../b", "", "a\x00b", "/x", "C:/x", "a\\b"):
        assert bad_member_name(bad), bad


@pytest.mark.parametrize("kind", ["docx", "xlsx", "pptx", "pdf"])
async def test_garbage_and_truncated_files(registry: Registry, ctx: ToolContext, kind: str) -> None:
    valid = {"docx": valid_docx, "xlsx": valid_xlsx, "pptx": valid_pptx}.get(
        kind, lambda: _pdf(2)
    )()
    for data in (
        b"",
        b"\x00\xff" * 500,
        b"just some text\n",
        valid[: len(valid) // 2],
        b"PK\x03\x04" + bytes(100),
    ):
        message = await read_as(registry, ctx, kind, data)
        assert "hostile" in message  # names the file
        assert "Traceback" not in message


async def test_wrong_format_is_refused(registry: Registry, ctx: ToolContext) -> None:
    assert "not a readable DOCX" in await read_as(registry, ctx, "docx", valid_xlsx())
    assert "not a valid XLSX" in await read_as(registry, ctx, "xlsx", _pdf(1))
    plain_zip = io.BytesIO()
    with zipfile.ZipFile(plain_zip, "w") as archive:
        archive.writestr("a.txt", "hi")
    assert "not a valid PPTX" in await read_as(registry, ctx, "pptx", plain_zip.getvalue())


async def test_malformed_xml_part_is_refused(registry: Registry, ctx: ToolContext) -> None:
    broken = rebuild(valid_docx(), {"word/document.xml": b"<w:document><unclosed>"})
    assert "not well-formed XML" in await read_as(registry, ctx, "docx", broken)


def _pdf(pages: int, password: str | None = None) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=200, height=200)
    if password:
        writer.encrypt(password, algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


async def test_pdf_caps(
    registry: Registry, ctx: ToolContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "password" in await read_as(registry, ctx, "pdf", _pdf(1, password="secret"))
    monkeypatch.setattr(pdf_tools, "PDF_MAX_PAGES", 3)
    assert "has 4 pages; the limit is 3" in await read_as(registry, ctx, "pdf", _pdf(4))
    monkeypatch.setattr(pdf_tools, "OBJECT_READ_MAX_BYTES", 100)
    assert "larger than" in await read_as(registry, ctx, "pdf", _pdf(1))


def test_pdf_parsing_stops_at_the_deadline() -> None:
    with pytest.raises(ToolError, match="took too long"):
        read_pdf(_pdf(3), "slow.pdf", first=1, last=None, max_chars=100, deadline=Deadline(0.0))


async def test_pdf_with_a_garbage_body(registry: Registry, ctx: ToolContext) -> None:
    message = await read_as(registry, ctx, "pdf", b"%PDF-1.7\n" + bytes(range(256)) * 40)
    assert "not a readable PDF" in message
