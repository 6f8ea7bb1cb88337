"""GraphiQL and the REST API docs in a real Chromium: rendered from this server's files alone."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
from playwright.sync_api import Page, expect

from tests.browser.conftest import PHONE, OriginGuard, at_both_widths
from tests.browser.helpers import finished_run, sign_up, store_session

EDITOR = "document.querySelector('.graphiql-query-editor .CodeMirror')"
SET_QUERY = f"text => {EDITOR}.CodeMirror.setValue(text)"


def run_in_graphiql(page: Page, name: str, query: str) -> None:
    """Type a named operation and run it once GraphiQL has parsed it (its editor's operation
    facts name it; run before, GraphiQL would route it by the previous document)."""
    page.evaluate(SET_QUERY, query)
    page.wait_for_function(f"name => {EDITOR}.CodeMirror.operationName === name", arg=name)
    page.get_by_role("button", name=re.compile("execute query", re.I)).click()


def test_graphiql_signed_in_runs_queries_and_subscriptions(
    new_page: Callable[..., Page], guard: OriginGuard, live_server: str
) -> None:
    session = sign_up(live_server)
    run = finished_run(live_server, session)
    page = new_page()
    store_session(page, session)
    page.goto("/graphql")
    expect(page.locator(".graphiql-query-editor .CodeMirror")).to_be_visible()
    # the auth header is filled in from the dashboard's session, and introspection (signed-in
    # callers only, in production mode) feeds the explorer
    expect(page.locator(".graphiql-editor-tool")).to_contain_text("Bearer")
    page.get_by_role("button", name="Show GraphiQL Explorer").click()
    explorer = page.locator(".graphiql-plugin")
    expect(explorer).to_contain_text("compileScopes")
    result = page.locator(".graphiql-response .CodeMirror")

    run_in_graphiql(page, "Me", "query Me { me { email } }")
    expect(result).to_contain_text(session["email"])
    at_both_widths(page, "graphiql")

    # a subscription goes over the websocket, authenticated by connection_init's payload
    events = f'executionEvents(id: "{run["execution_id"]}") {{ seq type }}'
    run_in_graphiql(page, "Events", f"subscription Events {{ {events} }}")
    expect(result).to_contain_text('"type": "status"')
    # GraphiQL keeps its tabs in sessionStorage, beside the session; localStorage never holds the token
    assert session["access_token"] not in page.evaluate("JSON.stringify(localStorage)")
    assert guard.console_errors == []


def test_the_api_docs_render_the_operations(
    new_page: Callable[..., Page], guard: OriginGuard, live_server: str
) -> None:
    session = sign_up(live_server)
    page = new_page(PHONE)
    store_session(page, session)
    page.goto("/docs")
    operations = page.locator(".opblock-summary-path")
    expect(operations.first).to_be_visible()
    document = httpx.get(f"{live_server}/openapi.json").json()
    expected = sum(len(methods) for methods in document["paths"].values())
    expect(operations).to_have_count(expected)
    expect(page.get_by_text("/agents/{agent_id}/execute", exact=True)).to_be_visible()
    # signed in on the dashboard, "Try it out" is authorized with the session's token
    expect(page.locator(".authorize.locked").first).to_be_visible()
    page.locator("#operations-accounts-list_api_keys .opblock-summary-path").click()
    page.get_by_role("button", name="Try it out").click()
    page.get_by_role("button", name="Execute", exact=True).click()
    answer = page.locator(".live-responses-table .response")
    expect(answer.locator(".response-col_status")).to_contain_text("200")
    expect(answer).to_contain_text('"api_keys"')
    assert session["access_token"] not in page.evaluate("JSON.stringify(localStorage)")
    at_both_widths(page, "api-docs")
    assert guard.console_errors == []
