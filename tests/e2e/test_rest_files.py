"""GET /files and GET /files/{path}: a user lists and downloads their own files, nobody else's."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from urllib.parse import quote

import pasar_files
from pasar_core.objects import LocalObjectStore
from pasar_core.plugins import build_plugin_manager
from pasar_core.registry import build_registry
from pasar_core.settings import Settings
from pasar_core.specs import ToolContext
from starlette.testclient import TestClient

Headers = dict[str, str]


def user_id_of(headers: Headers) -> str:
    payload = headers["Authorization"].split()[1].split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"])


def put(settings: Settings, headers: Headers, key: str, data: bytes) -> None:
    store = LocalObjectStore(settings.files_root)
    asyncio.run(store.put(user_id_of(headers), key, data))


def test_list_and_download_own_files(
    client: TestClient, make_user: Callable[..., Headers], pasar_settings: Settings
) -> None:
    alice = make_user()
    put(pasar_settings, alice, "reports/q1.pdf", b"%PDF-1.4 fake")
    put(pasar_settings, alice, "notes.txt", b"hello")
    listed = client.get("/files", headers=alice)
    assert listed.status_code == 200
    body = listed.json()
    assert [f["path"] for f in body["files"]] == ["notes.txt", "reports/q1.pdf"]
    assert body["files"][1]["size_bytes"] == 13
    assert body["truncated"] is False
    assert [
        f["path"] for f in client.get("/files?prefix=reports/", headers=alice).json()["files"]
    ] == ["reports/q1.pdf"]
    limited = client.get("/files?limit=1", headers=alice).json()
    assert (len(limited["files"]), limited["truncated"]) == (1, True)
    assert client.get("/files?limit=0", headers=alice).status_code == 400

    pdf = client.get("/files/reports/q1.pdf", headers=alice)
    assert pdf.status_code == 200
    assert pdf.content == b"%PDF-1.4 fake"
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == (
        "attachment; filename=\"q1.pdf\"; filename*=UTF-8''q1.pdf"
    )
    assert pdf.headers["content-length"] == "13"
    assert pdf.headers["x-content-type-options"] == "nosniff"
    text = client.get("/files/notes.txt", headers=alice)
    assert text.headers["content-type"] == "text/plain; charset=utf-8"


def test_download_streams_large_files_and_odd_names(
    client: TestClient, make_user: Callable[..., Headers], pasar_settings: Settings
) -> None:
    alice = make_user()
    data = bytes(range(256)) * 4096  # 1 MiB: many chunks
    put(pasar_settings, alice, 'big/ré sumé "x".bin', data)
    put(pasar_settings, alice, "page.html", b"<script>alert(1)</script>")
    with client.stream("GET", "/files/" + quote('big/ré sumé "x".bin'), headers=alice) as response:
        assert response.status_code == 200
        chunks = list(response.iter_bytes())
    assert b"".join(chunks) == data
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="r_ sum_ _x_.bin"')
    assert "filename*=UTF-8''r%C3%A9%20sum%C3%A9%20%22x%22.bin" in disposition
    html = client.get("/files/page.html", headers=alice)
    assert html.headers["content-type"] == "application/octet-stream"
    assert html.headers["content-disposition"].startswith("attachment")


def test_nobody_downloads_another_users_file(
    client: TestClient, make_user: Callable[..., Headers], pasar_settings: Settings
) -> None:
    alice, bob = make_user(), make_user()
    put(pasar_settings, alice, "secret.txt", b"alice only")
    missing = client.get("/files/does-not-exist.txt", headers=bob)
    assert missing.status_code == 404
    expected = missing.json()
    alice_id = user_id_of(alice)
    for path in (
        "/files/secret.txt",
        f"/files/..%2F{alice_id}%2Fsecret.txt",
        f"/files/%2E%2E/{alice_id}/secret.txt",
        "/files/%2Fetc%2Fpasswd",
        "/files/a%5C..%5Cb",
    ):
        response = client.get(path, headers=bob)
        assert response.status_code == 404, path
        assert response.json() == expected, path
        assert b"alice only" not in response.content
    assert client.get("/files", headers=bob).json() == {"files": [], "truncated": False}
    assert client.get("/files/secret.txt", headers=alice).content == b"alice only"


def test_files_need_authentication(client: TestClient) -> None:
    assert client.get("/files").status_code == 401
    assert client.get("/files/x.txt").status_code == 401
    assert client.get("/files/x.txt", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_tool_outputs_are_downloadable(
    client: TestClient, make_user: Callable[..., Headers], pasar_settings: Settings
) -> None:
    """A file a tool created (through a ToolContext carrying the server's store) downloads."""
    alice = make_user()
    user_id = user_id_of(alice)
    registry = build_registry(build_plugin_manager(enabled=(), extra=[pasar_files]))
    ctx = ToolContext(
        user_id=user_id,
        storage_root=pasar_settings.files_root / user_id,
        objects=LocalObjectStore(pasar_settings.files_root),
    )
    made = asyncio.run(
        registry.invoke(
            "docx:create",
            ctx,
            {"path": "out/memo.docx", "blocks": [{"type": "paragraph", "text": "hi"}]},
        )
    )
    response = client.get("/files/out/memo.docx", headers=alice)
    assert response.status_code == 200
    assert len(response.content) == made["size_bytes"]
    assert response.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.wordprocessingml"
    )


def test_openapi_describes_the_file_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "get" in paths["/files"]
    download = paths["/files/{path}"]["get"]
    assert download["parameters"][0]["name"] == "path"
    assert download["security"]
    assert "404" in download["responses"]
