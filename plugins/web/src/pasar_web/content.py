"""Reading response bodies: content types, text decoding, main-text extraction and links."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Literal

import httpx

from pasar_web.limits import LINK_TEXT_CHARS

Kind = Literal["html", "json", "text", "binary", "unknown"]

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
TEXT_TYPES = frozenset(
    {
        "application/xml",
        "application/javascript",
        "application/ecmascript",
        "application/x-javascript",
        "application/yaml",
        "application/x-yaml",
        "application/toml",
        "application/graphql",
        "application/sql",
        "application/x-www-form-urlencoded",
        "application/x-sh",
        "application/x-httpd-php",
    }
)
JSON_TYPES = frozenset({"application/json", "application/x-ndjson", "application/jsonl"})

_CHARSET = re.compile(r"""charset\s*=\s*["']?([A-Za-z0-9._:-]+)""", re.IGNORECASE)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9._:-]+)""", re.IGNORECASE)
_HTML_START = re.compile(
    rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)\b", re.I | re.S
)
_SPACE = re.compile(r"\s+")


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def kind_of(content_type: str) -> Kind:
    """What a Content-Type header promises: HTML, JSON, other text, binary, or nothing."""
    media = media_type(content_type)
    if not media:
        return "unknown"
    if media in HTML_TYPES:
        return "html"
    if media in JSON_TYPES or media.endswith("+json"):
        return "json"
    if (
        media.startswith("text/")
        or media in TEXT_TYPES
        or media.endswith(("+xml", "+yaml", "+toml"))
    ):
        return "text"
    return "binary"


def sniff(body: bytes) -> Kind:
    """A body's kind when no (or a wrong) Content-Type says: NUL bytes mean binary."""
    head = body[:4096]
    if b"\x00" in head:
        return "binary"
    if _HTML_START.match(head):
        return "html"
    return "text"


def decode(body: bytes, content_type: str, *, html: bool = False) -> str:
    """Text of a body: the header's charset, else a BOM, else an HTML meta charset, else UTF-8."""
    encoding: str | None = None
    match = _CHARSET.search(content_type)
    if match:
        encoding = match.group(1)
    elif body.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    elif html:
        meta = _META_CHARSET.search(body[:4096])
        encoding = meta.group(1).decode("ascii") if meta else None
    try:
        codec = codecs.lookup(encoding or "utf-8").name
    except LookupError:
        codec = "utf-8"
    return body.decode(codec, errors="replace")


@dataclass(frozen=True, slots=True)
class Page:
    """The readable part of an HTML page and what it says about itself."""

    text: str
    title: str | None = None
    description: str | None = None
    author: str | None = None
    date: str | None = None
    site_name: str | None = None
    language: str | None = None


def extract_page(html: str, url: str) -> Page:
    """Main text (Markdown) and metadata with trafilatura; the whole page's text as fallback."""
    import trafilatura  # imported on use: start-up stays fast

    tree = trafilatura.load_html(html)
    if tree is None:
        return Page(text="")
    meta = trafilatura.extract_metadata(tree, url, None, False)
    text = trafilatura.extract(
        tree,
        url=url,
        output_format="markdown",
        include_comments=False,
        include_tables=True,
        include_links=False,
        include_images=False,
        deduplicate=False,
    )
    if not text:
        text = trafilatura.html2txt(tree)
    language = tree.get("lang") or meta.language
    return Page(
        text=text.strip(),
        title=meta.title or None,
        description=meta.description or None,
        author=meta.author or None,
        date=meta.date or None,
        site_name=meta.sitename or None,
        language=language or None,
    )


@dataclass(frozen=True, slots=True)
class Link:
    url: str
    text: str


class _LinkParser(HTMLParser):
    """Collects `<a href>` with their text and the first `<base href>`."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.found: list[tuple[str, str]] = []
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "base" and self.base is None and values.get("href"):
            self.base = values["href"]
        elif tag == "a":
            self._finish()
            if values.get("href"):
                self._href = values["href"]
                self._text = []
                label = values.get("aria-label") or values.get("title")
                if label:
                    self._text.append(label)
        elif tag == "img" and self._href is not None and values.get("alt"):
            self._text.append(values["alt"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._finish()

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def close(self) -> None:
        super().close()
        self._finish()

    def _finish(self) -> None:
        if self._href is not None:
            text = _SPACE.sub(" ", " ".join(self._text)).strip()
            self.found.append((self._href, text[:LINK_TEXT_CHARS]))
        self._href = None
        self._text = []


def extract_links(html: str, page_url: str) -> list[Link]:
    """Absolute http(s) links of a page, fragments dropped, each URL once (first text wins)."""
    parser = _LinkParser()
    try:
        parser.feed(html)
        parser.close()
    except (AssertionError, ValueError):  # html.parser on hostile markup: keep what was found
        pass
    page = httpx.URL(page_url).copy_with(fragment=None)
    base = page
    if parser.base:
        try:
            base = page.join(parser.base.strip())
        except (httpx.InvalidURL, ValueError):
            base = page
    links: list[Link] = []
    seen: dict[str, int] = {}
    for href, text in parser.found:
        try:
            url = base.join(href.strip()).copy_with(fragment=None)
        except (httpx.InvalidURL, ValueError, TypeError):
            continue
        if url.scheme not in ("http", "https") or not url.host or url == page:
            continue
        key = str(url)
        if key in seen:
            if text and not links[seen[key]].text:
                links[seen[key]] = Link(url=key, text=text)
            continue
        seen[key] = len(links)
        links.append(Link(url=key, text=text))
    return links
