"""A small markdown-ish reader for the create tools: headings, paragraphs and lists."""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(.*)$")
_NUMBERED = re.compile(r"^(\s*)(\d{1,9})[.)]\s+(.*)$")
# Characters XML 1.0 cannot hold (python-docx, python-pptx and openpyxl refuse them).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class Block:
    """`kind` is heading, paragraph, bullet or numbered; `level` is the heading or list depth."""

    kind: str
    text: str
    level: int = 0
    number: int = 0


def xml_safe(text: str) -> str:
    """Drop characters an XML document cannot contain (control characters, lone surrogates)."""
    return _NOT_XML.sub("", text)


def parse_markup(text: str) -> list[Block]:
    """`# Heading`, blank-line separated paragraphs, `- item` / `1. item` lists (indent nests)."""
    blocks: list[Block] = []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            blocks.append(Block("paragraph", " ".join(paragraph)))
            paragraph.clear()

    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.rstrip()
        if not line.strip():
            flush()
            continue
        heading = _HEADING.match(line)
        bullet = _BULLET.match(line)
        numbered = _NUMBERED.match(line)
        if heading:
            flush()
            blocks.append(Block("heading", heading.group(2), level=len(heading.group(1))))
        elif bullet:
            flush()
            depth = min(len(bullet.group(1).expandtabs(4)) // 2, 4)
            blocks.append(Block("bullet", bullet.group(2).strip(), level=depth))
        elif numbered:
            flush()
            depth = min(len(numbered.group(1).expandtabs(4)) // 2, 4)
            blocks.append(
                Block("numbered", numbered.group(3).strip(), depth, int(numbered.group(2)))
            )
        elif (
            blocks
            and blocks[-1].kind in ("bullet", "numbered")
            and not paragraph
            and raw[:1].isspace()
        ):
            last = blocks.pop()
            blocks.append(Block(last.kind, f"{last.text} {line.strip()}", last.level, last.number))
        else:
            paragraph.append(line.strip())
    flush()
    return blocks
