"""GET /files and GET /files/{path}: list and download the caller's files (tool outputs)."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from pasar_core.errors import BadRequest, NotFound
from pasar_core.objects import InvalidObjectKey, ObjectNotFound, ObjectStore, build_object_store
from pasar_core.services import Services
from pydantic import BaseModel
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from pasar.rest.requests import caller, query_int, services_of
from pasar.rest.responses import json_response

NOT_FOUND = "file not found"
# Types a browser may safely be told; anything else (HTML, SVG, scripts) is sent as bytes.
CONTENT_TYPES = {
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".csv": "text/csv; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".json": "application/json",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".zip": "application/zip",
}


class FileOut(BaseModel):
    path: str
    size_bytes: int
    modified: datetime


class FileListOut(BaseModel):
    files: list[FileOut]
    truncated: bool


def object_store_of(services: Services) -> ObjectStore:
    return services.object_store or build_object_store(services.settings)


def content_type(key: str) -> str:
    suffix = "." + key.rsplit(".", 1)[-1].lower() if "." in key else ""
    return CONTENT_TYPES.get(suffix, "application/octet-stream")


def content_disposition(key: str) -> str:
    """`attachment` with an ASCII fallback name and the exact UTF-8 name (RFC 6266 / 5987)."""
    name = key.rsplit("/", 1)[-1]
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


async def list_files(request: Request) -> Response:
    principal = await caller(request)
    prefix = request.query_params.get("prefix", "")
    limit = query_int(request, "limit", 100, low=1, high=1000)
    store = object_store_of(services_of(request))
    try:
        found = await store.list(str(principal.user_id), prefix, limit=limit + 1)
    except InvalidObjectKey as error:
        raise BadRequest(error.message) from None
    files = [FileOut(path=i.key, size_bytes=i.size, modified=i.modified) for i in found[:limit]]
    return json_response(FileListOut(files=files, truncated=len(found) > limit))


async def download_file(request: Request) -> Response:
    principal = await caller(request)
    key = request.path_params["path"]
    store = object_store_of(services_of(request))
    try:
        stream = await store.open(str(principal.user_id), key)
    except (InvalidObjectKey, ObjectNotFound):
        raise NotFound(NOT_FOUND) from None
    headers = {
        "Content-Length": str(stream.info.size),
        "Content-Disposition": content_disposition(stream.info.key),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
        "Cache-Control": "private, no-store",
    }
    return StreamingResponse(
        stream,
        media_type=content_type(stream.info.key),
        headers=headers,
        background=BackgroundTask(stream.aclose),
    )
