"""A whole document's text, by the same readers as the files tools (and so the same guards:
zip bombs, hostile XML, damaged files): what an agent's knowledge learns from a file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePosixPath

from pasar_core.errors import ToolError

from pasar_files.csv_tools import read_csv
from pasar_files.docx_tools import read_docx
from pasar_files.guard import Deadline
from pasar_files.limits import CSV_READ_MAX_ROWS, PDF_MAX_PAGES, PPTX_MAX_SLIDES, XLSX_READ_MAX_ROWS
from pasar_files.pdf_tools import read_pdf
from pasar_files.pptx_tools import read_pptx
from pasar_files.txt_tools import decode_text
from pasar_files.xlsx_tools import read_xlsx

DOCUMENT_SECONDS = 60.0
KINDS = ("pdf", "docx", "pptx", "xlsx", "csv", "txt", "md")


def _too_large(shown: str, max_chars: int) -> ToolError:
    return ToolError(f"{shown!r} has more than {max_chars} characters of text")


def _pdf(data: bytes, shown: str, max_chars: int, deadline: Deadline) -> tuple[str, bool]:
    read = read_pdf(data, shown, first=1, last=PDF_MAX_PAGES, max_chars=max_chars,
                    deadline=deadline)  # fmt: skip
    return "\n\n".join(page["text"] for page in read["pages"]), read["truncated"]


def _docx(data: bytes, shown: str, max_chars: int, deadline: Deadline) -> tuple[str, bool]:
    read = read_docx(data, shown, offset=0, limit=1_000_000, max_chars=max_chars,
                     deadline=deadline)  # fmt: skip
    parts = [block.get("text") or "\n".join(" | ".join(row) for row in block.get("rows", []))
             for block in read["blocks"]]  # fmt: skip
    return "\n\n".join(parts), read["truncated"]


def _pptx(data: bytes, shown: str, max_chars: int, deadline: Deadline) -> tuple[str, bool]:
    read = read_pptx(data, shown, first=1, limit=PPTX_MAX_SLIDES, max_chars=max_chars,
                     deadline=deadline)  # fmt: skip
    slides = ["\n".join([slide["title"], *slide["text"], slide["notes"]]).strip()
              for slide in read["slides"]]  # fmt: skip
    return "\n\n".join(slides), read["truncated"]


def _xlsx(data: bytes, shown: str, max_chars: int, deadline: Deadline) -> tuple[str, bool]:
    read = read_xlsx(data, shown, sheet=None, cell_range=None, limit=XLSX_READ_MAX_ROWS,
                     offset=0, max_chars=max_chars, deadline=deadline)  # fmt: skip
    lines = [", ".join("" if cell is None else str(cell) for cell in row) for row in read["rows"]]
    return "\n".join(lines), read["truncated"]


def _csv(data: bytes, shown: str, max_chars: int, deadline: Deadline) -> tuple[str, bool]:
    read = read_csv(data, shown, limit=CSV_READ_MAX_ROWS, offset=0, delimiter=",", header=False)
    text = "\n".join(", ".join(row) for row in read["rows"])
    return text, read["truncated"] or len(text) > max_chars


def _txt(data: bytes, shown: str, max_chars: int, deadline: Deadline) -> tuple[str, bool]:
    return decode_text(data, shown, max_bytes=max_chars * 4, encoding="utf-8")


READERS: dict[str, Callable[[bytes, str, int, Deadline], tuple[str, bool]]] = {
    "pdf": _pdf, "docx": _docx, "pptx": _pptx, "xlsx": _xlsx, "csv": _csv, "txt": _txt,
    "md": _txt,
}  # fmt: skip


def document_kind(filename: str) -> str | None:
    """The reader a file name asks for (by its extension), or None when none reads it."""
    kind = PurePosixPath(filename).suffix.lower().lstrip(".")
    return kind if kind in READERS else None


def document_text(filename: str, data: bytes, *, max_chars: int) -> str:
    """The text of `data` read as its extension says; `ToolError` when it is damaged, of
    another format, or holds more than `max_chars` characters."""
    kind = document_kind(filename)
    if kind is None:
        raise ToolError(f"{filename!r} is not a kind of file pasar reads ({', '.join(KINDS)})")
    text, truncated = READERS[kind](data, filename, max_chars, Deadline.after(DOCUMENT_SECONDS))
    if truncated or len(text) > max_chars:
        raise _too_large(filename, max_chars)
    return text
