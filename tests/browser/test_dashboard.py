"""The dashboard in a real Chromium, as a new user meets it: sign up, browse the catalogue,
create an agent with tools, run it with the scripted model, watch the steps stream in, approve
the risky call, read the answer and the history; at desktop width and at 375 px."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable

import httpx
import pytest
from pasar_core.testing import TEST_PASSWORD
from pasar_google_workspace.testing import RunningEmulator
from playwright.sync_api import Page, expect

from tests.browser.conftest import (
    DESKTOP,
    PHONE,
    OriginGuard,
    assert_accessible,
    at_both_widths,
    screenshot,
)

SCRIPT = [
    {"tool_calls": [{"name": "txt_write", "args": {"path": "hello.txt", "content": "hi"}}]},
    {"content": "I wrote hello.txt."},
]


def sign_up_in_the_page(page: Page) -> str:
    email = f"new-{uuid.uuid4().hex[:10]}@example.com"
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in to pasar")).to_be_visible()
    assert_accessible(page)
    page.get_by_role("button", name="New here? Create an account").click()
    page.get_by_label("Email", exact=True).fill("not an email")
    page.get_by_label("Password", exact=True).fill("short")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_label("Email", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Password", exact=True)).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(TEST_PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Your agents")).to_be_visible()
    return email


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "375px"])
def test_a_new_user_creates_runs_and_approves(
    new_page: Callable[..., Page], guard: OriginGuard, viewport: dict[str, int]
) -> None:
    width = "desktop" if viewport == DESKTOP else "375px"
    page = new_page(viewport)
    sign_up_in_the_page(page)
    screenshot(page, f"dashboard-agents-{width}")
    assert_accessible(page)

    # the catalogue: searchable, Google tools with their permissions and how sensitive they are
    page.get_by_role("link", name="Catalogue").click()
    page.get_by_label("Search").fill("email gmail send")
    gmail = page.locator(".tool").filter(has_text="Send an email with Gmail")
    expect(gmail).to_be_visible()
    expect(gmail.locator(".permissions")).to_contain_text("Asks Google for:")
    expect(gmail.locator(".permissions .badge")).not_to_have_text("Unknown")
    page.get_by_label("Search").fill("")
    page.get_by_label("Family").select_option(label="Files")
    expect(page.locator(".family h2")).to_have_text(["Files"])
    screenshot(page, f"dashboard-catalogue-{width}")
    assert_accessible(page)

    # a new agent: the form checks fields before sending, previews permissions as tools are ticked
    page.get_by_role("link", name="Agents").click()
    page.get_by_role("link", name="New agent").click()
    page.get_by_role("button", name="Create agent").click()
    expect(page.get_by_label("Name")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Name").fill("Note writer")
    page.get_by_label("Instructions").fill("Write the notes I ask for.")
    page.get_by_label("Model", exact=True).fill("scripted")
    page.get_by_text("Advanced model options").click()
    page.get_by_label("Model options (JSON)").fill("{not json")
    page.get_by_role("button", name="Create agent").click()
    expect(page.get_by_text(re.compile("Not valid JSON"))).to_be_visible()
    page.get_by_label("Model options (JSON)").fill(json.dumps({"script": SCRIPT}))
    page.get_by_label(re.compile("^Send an email with Gmail")).check()
    preview = page.locator("#scope-preview")
    expect(preview).to_contain_text("Google will be asked for:")
    page.get_by_label(re.compile("^Send an email with Gmail")).uncheck()
    expect(preview).to_contain_text("No tool needs a permission")
    page.get_by_label(re.compile("^Write a text file")).check()
    page.get_by_label(re.compile("^Writes:")).check()  # ask before writing
    screenshot(page, f"dashboard-agent-form-{width}")
    assert_accessible(page)
    page.get_by_role("button", name="Create agent").click()
    expect(page.get_by_role("status").filter(has_text="Agent created.")).to_be_visible()

    # run it: the steps stream in, the write waits for approval, the answer shows
    page.get_by_role("link", name="Open the agent to run it").click()
    expect(page.get_by_role("heading", name="Note writer")).to_be_visible()
    page.get_by_role("button", name="Run").click()
    expect(page.get_by_text("Type what the agent should do.")).to_be_visible()
    page.get_by_label("What should the agent do?").fill("Write hello.txt")
    page.get_by_role("button", name="Run").click()
    steps = page.get_by_role("list", name="Steps")
    expect(steps).to_contain_text("decides to call txt:write")
    expect(page.get_by_role("heading", name="Approve this action?")).to_be_visible()
    expect(page.locator(".approval pre")).to_contain_text('"path": "hello.txt"')
    expect(page.locator(".run-status")).to_have_text("Waiting for your approval")
    screenshot(page, f"dashboard-approval-{width}")
    assert_accessible(page)
    if width == "desktop":
        page.get_by_role("button", name="Approve").click()
        expect(page.locator(".run-status")).to_have_text("Finished")
        expect(steps).to_contain_text("txt:write answered")
    else:  # the other decision: the tool never runs, the model is told so
        page.get_by_role("button", name="Reject").click()
        expect(page.locator(".approval")).to_contain_text("Rejected")
        expect(page.locator(".run-status")).to_have_text("Finished")
        expect(steps).to_contain_text("txt:write failed")
    expect(page.locator(".answer")).to_contain_text("I wrote hello.txt.")
    screenshot(page, f"dashboard-run-{width}")
    assert_accessible(page)

    page.get_by_role("link", name="Back to the agent").click()
    expect(page.locator(".history li")).to_have_count(1)
    expect(page.locator(".history li")).to_contain_text("Finished")
    assert guard.console_errors == []


def test_an_expired_session_returns_to_sign_in_keeping_the_form(
    new_page: Callable[..., Page], guard: OriginGuard, live_server: str
) -> None:
    page = new_page()
    email = sign_up_in_the_page(page)
    # an access token past its time is replaced with the refresh token, unnoticed
    page.evaluate("""() => {
        const session = JSON.parse(sessionStorage.getItem('pasar.session'));
        sessionStorage.setItem('pasar.session',
            JSON.stringify({...session, access_token: 'expired.' + session.access_token}));
    }""")
    page.get_by_role("link", name="API keys").click()
    expect(page.get_by_text("No API keys yet.")).to_be_visible()
    renewed = json.loads(page.evaluate("sessionStorage.getItem('pasar.session')"))
    assert not renewed["access_token"].startswith("expired.")
    page.goto("/#/agents/new")
    page.get_by_label("Name").fill("Half-typed agent")
    page.get_by_label("Instructions").fill("Something I do not want to type twice.")
    session = json.loads(page.evaluate("sessionStorage.getItem('pasar.session')"))
    # the session ends elsewhere (signed out on another device): its tokens stop working
    ended = httpx.post(
        f"{live_server}/auth/logout", json={"refresh_token": session["refresh_token"]}
    )
    assert ended.status_code == 204
    page.get_by_label("Model", exact=True).fill("scripted")
    page.get_by_role("button", name="Create agent").click()
    expect(page.get_by_role("status")).to_contain_text("Your session has ended")
    # by keyboard alone: the sign-in form takes the focus, Tab moves on, Enter sends it
    expect(page.get_by_label("Email", exact=True)).to_be_focused()
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    page.keyboard.type(TEST_PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_label("Name")).to_have_value("Half-typed agent")
    expect(page.get_by_label("Instructions")).to_have_value(
        "Something I do not want to type twice."
    )
    expect(page.get_by_label("Model", exact=True)).to_have_value("scripted")
    # signing out on purpose drops the drafts (an expired session kept them, above)
    drafts = "Object.keys(sessionStorage).filter((k) => k.startsWith('pasar.draft.'))"
    assert page.evaluate(drafts) != []
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Email", exact=True)).to_be_visible()
    assert page.evaluate(drafts) == []
    # a wrong password is a readable error, not a lost form
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".form-error")).not_to_be_empty()
    assert_accessible(page)
    # the accessibility check is no formality: an unlabelled field fails it
    page.evaluate("document.querySelector('form').append(document.createElement('input'))")
    with pytest.raises(AssertionError, match="label"):
        assert_accessible(page)
    assert guard.console_errors == []


def test_connect_google_then_keys_and_connections(
    new_page: Callable[..., Page], guard: OriginGuard, browser_google: RunningEmulator
) -> None:
    guard.provider = browser_google.url  # the consent's one hop to "Google"
    page = new_page()
    sign_up_in_the_page(page)
    page.get_by_role("link", name="New agent").click()
    page.get_by_label("Name").fill("Mail reader")
    page.get_by_label("Model", exact=True).fill("scripted")
    page.get_by_label(re.compile("^Search and read Gmail")).check()
    preview = page.locator("#scope-preview")
    expect(preview).to_contain_text("not granted yet")
    page.get_by_role("button", name="Create agent").click()
    # the server's field error (the scripted model needs a script) opens the advanced options
    options = page.get_by_label("Model options (JSON)")
    expect(options).to_be_visible()
    expect(options).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_text("'script' is a required property")).to_be_visible()
    options.fill(json.dumps({"script": [{"content": "No new mail."}]}))
    page.get_by_role("button", name="Create agent").click()
    expect(page.get_by_role("link", name="Connect Google")).to_be_visible()
    at_both_widths(page, "dashboard-connect-google")

    # a run waits for the consent; the link opens in its own tab (pasar's sign-in, the
    # emulator, pasar's callback) and the run goes on by itself afterwards
    page.get_by_role("link", name="Open the agent to run it").click()
    page.get_by_label("What should the agent do?").fill("Any new mail?")
    page.get_by_role("button", name="Run").click()
    expect(page.get_by_role("heading", name="This run needs your Google account")).to_be_visible()
    with page.expect_popup() as opened:
        page.get_by_role("link", name="Connect Google").click()
    consent = opened.value
    consent.get_by_label(re.compile("^Password of")).fill(TEST_PASSWORD)
    consent.get_by_role("button", name=re.compile("^Continue to")).click()
    expect(consent.get_by_role("heading", name=re.compile("connected$"))).to_be_visible()
    consent.close()
    expect(page.locator(".run-status")).to_have_text("Finished")
    expect(page.locator(".answer")).to_contain_text("No new mail.")

    page.get_by_role("link", name="Connections").click()
    expect(page.locator(".connections li")).to_have_count(1)
    expect(page.locator(".connections .badge")).to_have_text("Working")
    at_both_widths(page, "dashboard-connections")
    assert_accessible(page)
    page.get_by_role("link", name="Agents").click()
    page.get_by_role("link", name="Mail reader").click()
    page.get_by_role("link", name="Edit").click()
    expect(page.get_by_label("Name")).to_have_value("Mail reader")
    expect(page.get_by_label(re.compile("^Search and read Gmail"))).to_be_checked()
    expect(preview).to_contain_text("Google will be asked for:")
    expect(preview).not_to_contain_text("not granted yet")

    # API keys: created and shown once, then revoked
    page.get_by_role("link", name="API keys").click()
    hostile = "laptop <img src=https://evil.example/key.png>"  # text, never markup
    page.get_by_label("Name", exact=True).fill(hostile)
    page.get_by_role("button", name="Create key").click()
    expect(page.locator("pre.secret")).to_have_text(re.compile(r"\S{20,}"))
    expect(page.locator(".keys .badge")).to_have_text("active")
    expect(page.locator(".keys strong")).to_have_text(hostile)
    assert_accessible(page)
    page.get_by_role("button", name=f"Revoke {hostile}").click()
    expect(page.locator(".keys .badge")).to_have_text("revoked")
    assert guard.console_errors == []


def test_register_a_custom_tool_with_the_schema_checked_as_typed(
    new_page: Callable[..., Page], guard: OriginGuard
) -> None:
    page = new_page(PHONE)
    sign_up_in_the_page(page)
    page.get_by_role("link", name="Catalogue").click()
    page.get_by_role("link", name="Register a custom tool").click()
    namespace = f"b{uuid.uuid4().hex[:8]}"
    page.get_by_label("Tool id").fill(f"{namespace}:weather")
    page.get_by_label("Title").fill("Weather")
    page.get_by_label("Description", exact=True).fill("Today's weather in a city.")
    page.get_by_label("URL").fill("http://127.0.0.1:9/weather?city={city}")
    schema = page.get_by_label("Input schema (JSON Schema)")
    schema.fill('{"type": "object", "required": ["city"]')  # typed so far: no closing brace
    expect(schema).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_text(re.compile("^Not valid JSON"))).to_be_visible()
    schema.fill('{"type": "object", "required": ["city"]}')
    expect(page.get_by_text('Required but not in "properties": city.')).to_be_visible()
    schema.fill('{"type": "object", "properties": {"city": {"type": "strin"}}}')
    expect(schema).not_to_have_attribute("aria-invalid", "true")
    # what only the server knows (a JSON Schema type that does not exist) lands on the field
    page.get_by_role("button", name="Register tool").click()
    expect(schema).to_have_attribute("aria-invalid", "true")
    expect(page.locator(f"#{schema.get_attribute('id')}-error")).not_to_be_empty()
    screenshot(page, "dashboard-custom-tool-375px")
    assert_accessible(page)
    schema.fill('{"type": "object", "properties": {"city": {"type": "string"}}}')
    page.get_by_role("button", name="Register tool").click()
    expect(page.get_by_role("status")).to_contain_text(f"Registered {namespace}:weather, version 1")
    page.get_by_role("link", name="See it in the catalogue").click()
    page.get_by_label("Search").fill(namespace)
    expect(page.locator(".tool")).to_have_count(1)
    expect(page.locator(".tool")).to_contain_text("Today's weather in a city.")
    assert guard.console_errors == []


def test_the_agent_form_offers_the_servers_strategies_and_a_run_shows_the_plan(
    new_page: Callable[..., Page], guard: OriginGuard
) -> None:
    page = new_page()
    sign_up_in_the_page(page)
    page.get_by_role("link", name="New agent").click()
    strategies = page.get_by_role("group", name="Strategy")
    for title in ("Step by step (ReAct)", "Plan, then execute", "To-do list"):
        expect(strategies.get_by_label(title, exact=True)).to_be_visible()  # from GET /strategies
    expect(strategies.get_by_label("Step by step (ReAct)", exact=True)).to_be_checked()
    page.get_by_label("Name").fill("Planner")
    page.get_by_label("Model", exact=True).fill("scripted")
    page.get_by_text("Advanced model options").click()
    script = [{"content": "1. Greet"}, {"content": "Hello from the plan."}]
    page.get_by_label("Model options (JSON)").fill(json.dumps({"script": script}))
    strategies.get_by_label("Plan, then execute", exact=True).check()
    page.get_by_role("button", name="Create agent").click()
    expect(page.get_by_role("status").filter(has_text="Agent created.")).to_be_visible()
    page.get_by_role("link", name="Open the agent to run it").click()
    page.get_by_role("button", name="Run").click()
    page.get_by_label("What should the agent do?").fill("Say hello")
    page.get_by_role("button", name="Run").click()
    steps = page.get_by_role("list", name="Steps")
    expect(steps.locator(".step-plan").first).to_contain_text("Greet")
    expect(page.locator(".answer")).to_contain_text("Hello from the plan.")
    assert_accessible(page)


def test_an_agent_learns_documents_typed_and_uploaded_and_shows_what_it_would_recall(
    new_page: Callable[..., Page], guard: OriginGuard
) -> None:
    page = new_page()
    sign_up_in_the_page(page)
    page.get_by_role("link", name="New agent").click()
    page.get_by_label("Name").fill("Helpdesk")
    page.get_by_label("Model", exact=True).fill("scripted")
    page.get_by_text("Advanced model options").click()
    page.get_by_label("Model options (JSON)").fill(json.dumps({"script": [{"content": "ok"}]}))
    memory = page.get_by_role("group", name="Memory")
    memory.get_by_label("Knowledge and recall", exact=True).check()
    page.get_by_role("button", name="Create agent").click()
    expect(page.get_by_role("status").filter(has_text="Agent created.")).to_be_visible()
    page.get_by_role("link", name="Open the agent to run it").click()

    knowledge = page.get_by_role("region", name="Knowledge")
    expect(knowledge.get_by_text("No documents yet.")).to_be_visible()
    expect(knowledge).to_contain_text("recalls the passages nearest each input")
    adding = knowledge.get_by_role("form", name="Add a document")
    adding.get_by_role("button", name="Add to knowledge").click()  # nothing typed: refused here
    expect(adding.get_by_label("Text")).to_have_attribute("aria-invalid", "true")
    adding.get_by_label("Document name").fill("wifi")
    adding.get_by_label("Text").fill("The guest wifi password is purple-elephant-42.")
    adding.get_by_role("button", name="Add to knowledge").click()
    # the first embedding loads the local model into this process (once per process): a bound
    # for a slow machine, not a measure
    expect(knowledge.get_by_role("status")).to_contain_text("Learned wifi", timeout=300_000)
    adding.get_by_label("Or a file").set_input_files(
        {"name": "parking.txt", "mimeType": "text/plain",
         "buffer": b"Visitors park on level -2, bays 40 to 60."}
    )  # fmt: skip
    adding.get_by_role("button", name="Add to knowledge").click()
    expect(knowledge.get_by_role("status")).to_contain_text("Learned parking.txt")
    documents = knowledge.get_by_role("list", name="Documents")
    expect(documents.get_by_role("listitem")).to_have_count(2)

    adding.get_by_label("Or a file").set_input_files(
        {"name": "virus.exe", "mimeType": "application/octet-stream", "buffer": b"MZ\x90\x00"}
    )
    adding.get_by_role("button", name="Add to knowledge").click()  # the server's refusal, in place
    expect(adding.get_by_label("Or a file")).to_have_attribute("aria-invalid", "true")
    expect(adding).to_contain_text("is not a kind of file pasar reads")
    expect(documents.get_by_role("listitem")).to_have_count(2)

    searching = knowledge.get_by_role("search", name="Search the knowledge")
    searching.get_by_label("Question").fill("what is the wifi password?")
    searching.get_by_role("button", name="Search").click()
    found = searching.get_by_role("list", name="Passages found")
    expect(found.get_by_role("listitem").first).to_contain_text("purple-elephant-42")
    assert_accessible(page)
    screenshot(page, "knowledge")

    knowledge.get_by_role("button", name="Forget wifi").click()
    expect(knowledge.get_by_role("status")).to_contain_text("Forgot wifi.")
    expect(documents.get_by_role("listitem")).to_have_count(1)
    expect(documents).to_contain_text("parking.txt")
    assert guard.console_errors == []
