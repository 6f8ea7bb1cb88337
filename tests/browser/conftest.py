"""Browser tests: Debian's Chromium driven by Playwright (`executable_path`; Playwright's own
browser download fails here), one browser and one live pasar server (uvicorn, lifespan on, its
own database) per session, a fresh browser context per test.

Playwright's sync API marks its event loop as running in the thread that drives it, between
calls too, so every `asyncio.run` in that thread would fail (the database fixtures use it): the
browser lives in a thread of its own, and each browser test's body runs there
(`pytest_pyfunc_call` below).

Every page a test opens has each request to another origin aborted and recorded, and the test
fails if there was one (websockets too). Screenshots go to `test-artifacts/screenshots/`.
Without Chromium the tests skip, and fail when `CI=true` (scripts/test installs it as root).
"""

from __future__ import annotations

import os
import queue
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvicorn
from pasar_core.settings import Settings
from pasar_core.testing import (
    TEMPLATE_DATABASE,
    TEST_ALLOW_PRIVATE_HOSTS,
    TEST_RATE_LIMIT,
    TEST_SECRET_KEY,
    PostgresForTests,
)
from pasar_google_workspace.emulator import EmulatorState
from pasar_google_workspace.testing import (
    CLIENT_ID,
    CLIENT_SECRET,
    RunningEmulator,
    emulator_client,
    serve_emulator,
)
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Route,
    expect,
    sync_playwright,
)

from pasar.app import create_app
from tests.support.servers import free_port

T = TypeVar("T")
# Assertions wait for the page; the loaded machine of a whole suite needs more than 5 s.
expect.set_options(timeout=15_000)
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 740}
HANDLED_ANSWER = "Failed to load resource: the server responded with a status of 4"
CHROMIUM_FLAGS = [
    "--no-sandbox",  # root on these machines
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def chromium_executable() -> str:
    found = os.environ.get("PASAR_TEST_CHROMIUM") or shutil.which("chromium")
    if found:
        return found
    message = "Chromium is missing: apt-get install -y chromium (scripts/test does, as root)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


class BrowserThread:
    """A thread that owns Playwright and one Chromium; `call(fn)` runs fn there."""

    def __init__(self, executable: str) -> None:
        self.jobs: queue.Queue[tuple[Callable[[], Any], Future[Any]] | None] = queue.Queue()
        self.thread = threading.Thread(
            target=self._serve, args=(executable,), daemon=True, name="browser"
        )
        self.started: Future[Browser] = Future()
        self.thread.start()
        self.browser = self.started.result(timeout=120)

    def _serve(self, executable: str) -> None:
        try:
            with sync_playwright() as driver:
                browser = driver.chromium.launch(
                    executable_path=executable, headless=True, args=CHROMIUM_FLAGS
                )
                self.started.set_result(browser)
                while (job := self.jobs.get()) is not None:
                    function, result = job
                    try:
                        result.set_result(function())
                    except BaseException as error:
                        result.set_exception(error)
                browser.close()
        except BaseException as error:
            if not self.started.done():
                self.started.set_exception(error)
            raise

    def call(self, function: Callable[[], T]) -> T:
        result: Future[T] = Future()
        self.jobs.put((function, result))
        return result.result()

    def stop(self) -> None:
        self.jobs.put(None)
        self.thread.join(timeout=60)


@pytest.fixture(scope="session")
def browser_thread() -> Iterator[BrowserThread]:
    thread = BrowserThread(chromium_executable())
    try:
        yield thread
    finally:
        thread.stop()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """A browser test's body runs in the browser's thread."""
    if "browser_thread" not in pyfuncitem.fixturenames:
        return None
    thread = pyfuncitem.funcargs["browser_thread"]
    assert isinstance(thread, BrowserThread)
    arguments = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    thread.call(lambda: pyfuncitem.obj(**arguments))
    return True


@pytest.fixture(scope="session")
def browser_google() -> Iterator[RunningEmulator]:
    """The Google emulator for the session's live server (consent redirects to it)."""
    with serve_emulator(EmulatorState(clients={CLIENT_ID: CLIENT_SECRET})) as running:
        yield running


@pytest.fixture(scope="session")
def live_server(
    pasar_postgres: PostgresForTests,
    tmp_path_factory: pytest.TempPathFactory,
    browser_google: RunningEmulator,
) -> Iterator[str]:
    """pasar with its lifespan, on 127.0.0.1, for the whole session (one database), its
    Google OAuth client pointed at the emulator."""
    name = f"pasar_browser_{uuid.uuid4().hex[:12]}"
    port = free_port()
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("browser-data"),
        database_url=pasar_postgres.create_database(name, template=TEMPLATE_DATABASE),
        secret_key=TEST_SECRET_KEY,
        db_pool_size=4,
        allow_private_hosts=TEST_ALLOW_PRIVATE_HOSTS,
        rate_limit_auth=TEST_RATE_LIMIT,
        rate_limit_writes=TEST_RATE_LIMIT,
        rate_limit_runs=TEST_RATE_LIMIT,
        public_url=f"http://127.0.0.1:{port}",
        oauth_clients={"google": emulator_client(browser_google)},
    )
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True, name="browser-live-server")
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the live pasar server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        pasar_postgres.drop_database(name)


@dataclass
class OriginGuard:
    """Requests (and websockets) a page made to any origin but the server's: aborted, listed."""

    origin: str
    foreign: list[str] = field(default_factory=list)
    provider: str | None = None
    """The OAuth provider's origin (the Google emulator) a consent test lets pages navigate to."""
    console_errors: list[str] = field(default_factory=list)
    """Uncaught exceptions and console errors (CSP refusals among them) of its pages."""

    def watch(self, context: BrowserContext) -> None:
        def route(route: Route) -> None:
            url = route.request.url
            allowed = [self.origin, *([self.provider] if self.provider else [])]
            if any(url == origin or url.startswith(origin + "/") for origin in allowed):
                route.continue_()
            else:
                self.foreign.append(url)
                route.abort()

        context.route("**/*", route)
        context.on("page", self.watch_page)

    def watch_page(self, page: Page) -> None:
        ws_origin = "ws" + self.origin.removeprefix("http")
        page.on(
            "websocket",
            lambda ws: None if ws.url.startswith(ws_origin + "/") else self.foreign.append(ws.url),
        )
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.console_errors.append(f"uncaught: {error}"))

    def _console(self, message: ConsoleMessage) -> None:
        # An API answer of 4xx the page handled is logged by Chromium as a failed resource:
        # not an error of the page's own (uncaught exceptions and CSP refusals are).
        if message.type == "error" and not message.text.startswith(HANDLED_ANSWER):
            self.console_errors.append(message.text)


@pytest.fixture
def guard(live_server: str) -> OriginGuard:
    return OriginGuard(live_server)


@pytest.fixture
def new_page(
    browser_thread: BrowserThread, live_server: str, guard: OriginGuard
) -> Iterator[Callable[..., Page]]:
    """new_page(viewport=DESKTOP) -> a page in a fresh context (its own storage), guarded.
    Call it in the test's body (which runs in the browser's thread)."""
    contexts: list[BrowserContext] = []

    def make(viewport: dict[str, int] = DESKTOP) -> Page:
        context = browser_thread.browser.new_context(viewport=viewport, base_url=live_server)  # type: ignore[arg-type]
        context.set_default_timeout(15_000)
        guard.watch(context)
        contexts.append(context)
        return context.new_page()  # the context's "page" event guards it

    yield make

    def close_all() -> None:
        for context in contexts:
            context.close()

    browser_thread.call(close_all)
    assert guard.foreign == [], f"pages requested other origins: {guard.foreign}"


def screenshot(page: Page, name: str) -> Path:
    """Save the page as it is now to test-artifacts/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    return path


def at_both_widths(page: Page, name: str) -> None:
    """Screenshots at the desktop width and at 375 px (the page's viewport is restored)."""
    before = page.viewport_size or DESKTOP
    for label, size in (("desktop", DESKTOP), ("375px", PHONE)):
        page.set_viewport_size(size)  # type: ignore[arg-type]
        screenshot(page, f"{name}-{label}")
    page.set_viewport_size(before)  # type: ignore[arg-type]


AXE = Path(__file__).with_name("vendor") / "axe-core@4.14.1" / "axe.min.js"
AXE_RUN = """async () => {
  const result = await axe.run(document, { runOnly: ["wcag2a", "wcag2aa", "wcag21aa"] });
  return result.violations.map((v) =>
    `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);
}"""


def assert_accessible(page: Page) -> None:
    """axe-core's WCAG 2.1 A/AA rules (labels, contrast, names, landmarks...) pass on the page
    as it is now. axe is evaluated through the driver, so the page's CSP stays on."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text() + "\n;undefined")
    violations: list[str] = page.evaluate(AXE_RUN)
    assert violations == [], "\n".join(violations)
