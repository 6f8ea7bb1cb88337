"""pasar tool family `files`: TXT, CSV, PDF, XLSX, PPTX and DOCX files in per-user storage."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from pasar_core.hookspecs import hookimpl
from pasar_core.specs import ToolFamily

from pasar_files.csv_tools import CSV_READ, CSV_WRITE
from pasar_files.docx_tools import DOCX_CREATE, DOCX_READ
from pasar_files.list_tool import FILES_LIST
from pasar_files.pdf_tools import PDF_CREATE, PDF_READ
from pasar_files.pptx_tools import PPTX_CREATE, PPTX_READ
from pasar_files.txt_tools import TXT_READ, TXT_WRITE
from pasar_files.xlsx_tools import XLSX_READ, XLSX_WRITE

try:
    __version__ = version("pasar-files")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0"

FILES = ToolFamily(
    id="files",
    title="Files",
    description=(
        "Read and create text, CSV, PDF, Excel, PowerPoint and Word files in your own files "
        "folder, and list them."
    ),
    tools=(
        FILES_LIST,
        TXT_READ,
        TXT_WRITE,
        CSV_READ,
        CSV_WRITE,
        PDF_READ,
        PDF_CREATE,
        XLSX_READ,
        XLSX_WRITE,
        PPTX_READ,
        PPTX_CREATE,
        DOCX_READ,
        DOCX_CREATE,
    ),
    version=__version__,
)


@hookimpl
def register_tool_families() -> list[ToolFamily]:
    """The `files` family: files:list and read/write tools for each format."""
    return [FILES]


__all__ = ["FILES", "register_tool_families"]
