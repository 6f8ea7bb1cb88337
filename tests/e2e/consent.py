"""A browser going through a consent link as a person would: pasar's start page (sign in), the
Google emulator (real HTTP on 127.0.0.1), then the callback, each browser with its own cookies."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import httpx2
from pasar_core.testing import TEST_PASSWORD
from starlette.testclient import TestClient

FORM_TOKEN = re.compile(r'name=form_token value="([^"]+)"')


class Browser:
    """One browser: its own cookie jar, over the app's TestClient (which keeps none of its own
    between calls, so two browsers never share a cookie)."""

    def __init__(self, app: TestClient) -> None:
        self.app = app
        self.cookies = httpx2.Cookies()

    def request(self, method: str, url: str, **kwargs: Any) -> httpx2.Response:
        self.app.cookies = self.cookies
        try:
            return self.app.request(method, url, follow_redirects=False, **kwargs)
        finally:
            self.cookies = httpx2.Cookies(self.app.cookies)
            self.app.cookies = httpx2.Cookies()

    def get(self, url: str, **kwargs: Any) -> httpx2.Response:
        return self.request("GET", url, **kwargs)

    def open_start(self, auth_url: str) -> httpx2.Response:
        """The start page of a consent link."""
        url = urlsplit(auth_url)
        assert url.path.endswith("/start"), auth_url
        return self.get(f"{url.path}?{url.query}")

    def sign_in(
        self, auth_url: str, password: str = TEST_PASSWORD, **headers: str
    ) -> httpx2.Response:
        """Open the start page and send its form: 303 to Google on the right password."""
        page = self.open_start(auth_url)
        assert page.status_code == 200, page.text
        token = FORM_TOKEN.search(page.text)
        assert token is not None, page.text
        form = {"state": state_of(auth_url), "form_token": token.group(1), "password": password}
        url = urlsplit(auth_url)
        return self.request(
            "POST", f"{url.path}?{url.query}", content=urlencode(form),
            headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
        )  # fmt: skip

    def google_url(self, auth_url: str, password: str = TEST_PASSWORD) -> str:
        started = self.sign_in(auth_url, password)
        assert started.status_code == 303, started.text
        location: str = started.headers["location"]
        return location

    def land(self, redirect: httpx.Response) -> httpx2.Response:
        """Follow Google's redirect back to pasar's callback."""
        location = urlsplit(redirect.headers["location"])
        assert location.path.endswith("/callback"), location
        return self.get(f"{location.path}?{location.query}")

    def connect(self, auth_url: str, password: str = TEST_PASSWORD, **emulator: str) -> Any:
        """The whole flow in this browser; the callback's page."""
        return self.land(consent_at_google(self.google_url(auth_url, password), **emulator))


def state_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["state"][0]


def consent_at_google(google_url: str, **emulator: str) -> httpx.Response:
    """The person consents at the emulator (test hooks: emulator_deny, emulator_untick,
    emulator_user); the answer redirects to pasar's callback."""
    url = google_url + ("&" + urlencode(emulator) if emulator else "")
    response = httpx.get(url, follow_redirects=False)
    assert response.status_code == 302, response.text
    return response


def error_code(page: httpx.Response | httpx2.Response) -> str | None:
    found = re.search(r"Error code: <code>([A-Z_]+)</code>", page.text)
    return found.group(1) if found else None
