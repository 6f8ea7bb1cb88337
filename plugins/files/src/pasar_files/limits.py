"""Size and count limits of the files tools, in one place so descriptions match the code."""

from __future__ import annotations

from pasar_core.objects import MAX_KEY_CHARS

MIB = 1024 * 1024

MAX_PATH_CHARS = MAX_KEY_CHARS

TXT_READ_DEFAULT_BYTES = MIB
TXT_READ_MAX_BYTES = 10 * MIB
TXT_WRITE_MAX_BYTES = 10 * MIB

# An append reads the whole file, adds to it and stores it again; the file may grow to this.
APPEND_MAX_BYTES = 50 * MIB

CSV_READ_MAX_BYTES = 50 * MIB
CSV_READ_DEFAULT_ROWS = 100
CSV_READ_MAX_ROWS = 10_000
CSV_READ_MAX_OFFSET = 100_000_000
CSV_READ_MAX_CHARS = 2 * MIB
"""Most characters one csv:read returns, counted as its JSON rows: each cell with its quotes and
separator, and (header=true) the column names again in each row."""
CSV_MAX_RECORD_CHARS = 2 * MIB
"""Most characters of one CSV record (a line, or lines joined by a quoted newline), checked before
the record is split into fields: a 1,000,000-field line is refused before it costs memory."""
CSV_MAX_CELL_CHARS = 131_072  # the csv module's default field_size_limit
CSV_WRITE_MAX_BYTES = 10 * MIB
CSV_WRITE_MAX_ROWS = 100_000
CSV_MAX_COLUMNS = 1_000
CSV_MAX_NAME_CHARS = 1_000

# Object-store backed tools (PDF, XLSX, PPTX, DOCX, files:list).
OBJECT_READ_MAX_BYTES = 50 * MIB
CREATE_MAX_TEXT_CHARS = 2 * MIB
READ_DEFAULT_CHARS = 100_000
READ_MAX_CHARS = 2 * MIB

ZIP_MAX_MEMBERS = 2_000
ZIP_MAX_MEMBER_BYTES = 100 * MIB
ZIP_MAX_TOTAL_BYTES = 200 * MIB
ZIP_MAX_RATIO = 100
ZIP_RATIO_MIN_BYTES = MIB

PDF_MAX_PAGES = 5_000
PDF_READ_MAX_PAGES = 200
PDF_CREATE_MAX_PAGES = 500

XLSX_READ_DEFAULT_ROWS = 100
XLSX_READ_MAX_ROWS = 10_000
XLSX_READ_MAX_COLUMNS = 200
XLSX_READ_MAX_SHEET_NAMES = 1_000
XLSX_WRITE_MAX_SHEETS = 50
XLSX_WRITE_MAX_CELLS = 500_000

PPTX_MAX_SLIDES = 500
DOCX_MAX_BLOCKS = 5_000
TABLE_MAX_CELLS = 10_000

LIST_DEFAULT = 100
LIST_MAX = 1_000
