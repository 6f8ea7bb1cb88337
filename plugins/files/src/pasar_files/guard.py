"""Hostile-input checks run before any document library sees a file.

Office files (DOCX, XLSX, PPTX) are zip packages of XML. Before python-docx, openpyxl or
python-pptx open one we check the zip's directory (member count, per-member and total
uncompressed size, compression ratio, encryption, member names that could escape a folder) and
stream every XML-looking member through defusedxml's expat parser with DTDs, entity
declarations and external references forbidden. Those libraries parse with lxml (openpyxl with
lxml's default parser, which expands internal entities), so no part that declares a DOCTYPE ever
reaches them: no billion laughs, no XXE, no external DTD fetch. The zip directory's sizes bound
what `zipfile` will inflate (it stops at the declared size and checks the CRC), so the checks
also bound the libraries' work.

Parsing runs in a worker thread; a `Deadline` is checked between steps so a slow file stops at
the tool's timeout instead of running on in the background.
"""

from __future__ import annotations

import io
import re
import time
import zipfile
import zlib
from dataclasses import dataclass
from xml.sax import SAXException

from defusedxml.common import DefusedXmlException
from defusedxml.expatreader import DefusedExpatParser
from pasar_core.errors import ToolError

from pasar_files.limits import (
    MIB,
    ZIP_MAX_MEMBER_BYTES,
    ZIP_MAX_MEMBERS,
    ZIP_MAX_RATIO,
    ZIP_MAX_TOTAL_BYTES,
    ZIP_RATIO_MIN_BYTES,
)

_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CHUNK = 256 * 1024
# What an XML document may start with: a BOM (UTF-8/16/32), '<' after whitespace, UTF-16 without
# a BOM, or '<?xm' in EBCDIC. Such members are parsed; the libraries could parse nothing else.
_XML_STARTS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff", b"<", b"\x00<")
_XML_STARTS_RAW = (b"<\x00", b"\x4c\x6f\xa7\x94")


@dataclass(frozen=True, slots=True)
class Deadline:
    """A point in time (monotonic clock) after which parsing gives up with a ToolError."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def check(self, shown: str) -> None:
        if time.monotonic() > self.at:
            raise ToolError(f"{shown!r} took too long to process; try a smaller part of it")


def bad_member_name(name: str) -> bool:
    """A name that could write or read outside the folder a package is unpacked into."""
    return (
        not name
        or name.startswith(("/", "\\"))
        or "\\" in name
        or bool(_DRIVE.match(name))
        or bool(_CONTROL.search(name))
        or ".." in name.split("/")
    )


def _looks_like_xml(head: bytes) -> bool:
    return head.lstrip(b" \t\r\n").startswith(_XML_STARTS) or head.startswith(_XML_STARTS_RAW)


def _check_xml(archive: zipfile.ZipFile, info: zipfile.ZipInfo, shown: str, d: Deadline) -> None:
    with archive.open(info) as member:
        head = member.read(64)
        if not _looks_like_xml(head):
            return
        parser = DefusedExpatParser(forbid_dtd=True, forbid_entities=True, forbid_external=True)
        parser.reset()
        try:
            chunk = head
            while chunk:
                parser.feed(chunk)
                d.check(shown)
                chunk = member.read(_CHUNK)
            parser.close()
        except DefusedXmlException:
            raise ToolError(
                f"{shown!r} was refused: its part {info.filename[:100]!r} declares a DOCTYPE or "
                "entities (possible XML bomb or external-entity attack)",
                details={"path": shown},
            ) from None
        except SAXException:
            raise ToolError(
                f"{shown!r} is damaged: its part {info.filename[:100]!r} is not well-formed XML",
                details={"path": shown},
            ) from None


def check_package(data: bytes, shown: str, kind: str, deadline: Deadline) -> None:
    """Refuse a zip package (DOCX, XLSX, PPTX) that is malformed, too big or unsafe to parse."""
    damaged = f"{shown!r} is not a valid {kind} file (damaged, or another format)"
    if not data.startswith(b"PK"):
        raise ToolError(damaged, details={"path": shown})
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError):
        raise ToolError(damaged, details={"path": shown}) from None
    with archive:
        infos = archive.infolist()
        if len(infos) > ZIP_MAX_MEMBERS:
            raise ToolError(
                f"{shown!r} has {len(infos)} parts; the limit is {ZIP_MAX_MEMBERS}",
                details={"path": shown},
            )
        names: set[str] = set()
        total = 0
        for info in infos:
            name = info.filename
            if bad_member_name(name):
                raise ToolError(
                    f"{shown!r} was refused: it has a part named {name[:100]!r} that points "
                    "outside the package",
                    details={"path": shown},
                )
            if name in names:
                raise ToolError(f"{shown!r} has the part {name[:100]!r} twice")
            names.add(name)
            if info.flag_bits & 0x1:
                raise ToolError(f"{shown!r} is encrypted; save it without a password")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise ToolError(damaged, details={"path": shown})
            if info.file_size > ZIP_MAX_MEMBER_BYTES:
                raise ToolError(
                    f"{shown!r} was refused: its part {name[:100]!r} unpacks to more than "
                    f"{ZIP_MAX_MEMBER_BYTES // MIB} MiB",
                    details={"path": shown},
                )
            if info.file_size > ZIP_RATIO_MIN_BYTES and info.file_size > ZIP_MAX_RATIO * max(
                info.compress_size, 1
            ):
                raise ToolError(
                    f"{shown!r} was refused: its part {name[:100]!r} is compressed more than "
                    f"{ZIP_MAX_RATIO}:1 (possible zip bomb)",
                    details={"path": shown},
                )
            total += info.file_size
            if total > ZIP_MAX_TOTAL_BYTES:
                raise ToolError(
                    f"{shown!r} was refused: it unpacks to more than "
                    f"{ZIP_MAX_TOTAL_BYTES // MIB} MiB",
                    details={"path": shown},
                )
        if "[Content_Types].xml" not in names:
            raise ToolError(damaged, details={"path": shown})
        try:
            for info in infos:
                if not info.is_dir():
                    _check_xml(archive, info, shown, deadline)
        except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError, RuntimeError):
            raise ToolError(damaged, details={"path": shown}) from None
