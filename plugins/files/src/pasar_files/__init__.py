"""pasar tool family `files`: read and write TXT and CSV files under a per-user storage root."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from pasar_core.hookspecs import hookimpl
from pasar_core.specs import ToolFamily

from pasar_files.csv_tools import CSV_READ, CSV_WRITE
from pasar_files.paths import resolve_user_path
from pasar_files.txt_tools import TXT_READ, TXT_WRITE

try:
    __version__ = version("pasar-files")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0"

FILES = ToolFamily(
    id="files",
    title="Files",
    description="Read and write text and CSV files in your own files folder.",
    tools=(TXT_READ, TXT_WRITE, CSV_READ, CSV_WRITE),
    version=__version__,
)


@hookimpl
def register_tool_families() -> list[ToolFamily]:
    """The `files` family: txt:read, txt:write, csv:read, csv:write."""
    return [FILES]


__all__ = ["FILES", "register_tool_families", "resolve_user_path"]
