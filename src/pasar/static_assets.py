"""The browser pages' files (`src/pasar/static/`: pasar's own scripts and the vendored
third-party builds) under one versioned prefix, `/static/<digest>/`, where the digest is a hash
of the whole tree: any change moves every URL, so each answer may be cached for a year. A request
for another digest is a 404 (a page from an older process asks for what it knew)."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocketClose

STATIC_DIR = Path(__file__).with_name("static")
CACHE_FOREVER = (b"cache-control", b"public, max-age=31536000, immutable")


@functools.cache  # once per process: the files change only with a release (or a restart)
def tree_digest(directory: Path) -> str:
    """The first 16 hex digits of a sha256 over every file's relative path and content."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


class StaticAssets:
    """Mount at `/static`: `url(path)` names a file; the ASGI app serves it, cached forever."""

    def __init__(self, directory: Path = STATIC_DIR) -> None:
        self.digest = tree_digest(directory)
        self.files = StaticFiles(directory=directory, follow_symlink=False)

    def url(self, path: str) -> str:
        return f"/static/{self.digest}/{path}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # a websocket to /static/...
            await WebSocketClose()(scope, receive, send)
            return
        prefix = f"/{self.digest}/"
        path: str = scope["path"].removeprefix(scope.get("root_path", ""))
        if not path.startswith(prefix):
            raise HTTPException(404, "no such static file (pages name them by their digest)")
        inner = dict(scope, path=path.removeprefix(prefix[:-1]), root_path="")

        async def send_cached(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in (200, 304):
                message["headers"] = [*message.get("headers", ()), CACHE_FOREVER]
            await send(message)

        await self.files(inner, receive, send_cached)
