"""The small HTML pages of OAuth consent: sign in to start, connected, refused. Self-contained:
no scripts, nothing loaded from elsewhere."""

from __future__ import annotations

import html

from pasar_core.errors import PasarError
from pasar_core.oauth.callback import ConsentOutcome
from pasar_core.oauth.start import PendingConsent

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the URL carries a state or an authorization code
    # No form-action: the consent form posts here and is redirected on to the provider, and
    # browsers apply form-action to that redirect too (it blocked Connect Google).
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
STYLE = (
    "body{font:16px system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}"
    "h1{font-size:1.4rem}.err{color:#a40000}.warn{border-left:4px solid #c60;padding-left:.8rem}"
    "label{display:block;margin:1rem 0}input[type=password]{font:inherit;width:100%}"
    "button{font:inherit;padding:.4rem 1rem}"
)


def _e(value: str) -> str:
    return html.escape(value, quote=True)


def _page(title: str, body: str, *, error: bool = False) -> str:
    return (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)} - pasar</title><style>{STYLE}</style>"
        f"<h1 class={'err' if error else 'ok'}>{_e(title)}</h1>{body}</html>"
    )


def _items(values: tuple[str, ...]) -> str:
    return "".join(f"<li><code>{_e(v)}</code></li>" for v in values)


def start_page(
    pending: PendingConsent, state: str, form_token: str, *, problem: str | None = None
) -> str:
    """Who the provider account would be connected to, and the password that proves it."""
    account = _e(pending.account_email)
    scopes = "".join(
        f"<li>{_e(s.description)} <code>{_e(s.scope)}</code></li>" for s in pending.scopes
    )
    body = [
        f"<p>This link connects a {_e(pending.title)} account to the pasar account "
        f"<strong>{account}</strong>.</p>",
    ]
    if scopes:
        body.append(f"<p>pasar will ask {_e(pending.title)} for:</p><ul>{scopes}</ul>")
    body.append(
        f"<p class=warn>If <strong>{account}</strong> is not your pasar account, close this "
        f"page: whoever sent you this link would get access to your {_e(pending.title)} "
        "data.</p>"
    )
    if problem:
        body.append(f"<p class=err>{_e(problem)}</p>")
    body.append(
        "<form method=post>"
        f'<input type=hidden name=state value="{_e(state)}">'
        f'<input type=hidden name=form_token value="{_e(form_token)}">'
        f'<input type=email name=username value="{account}" autocomplete=username readonly hidden>'
        f"<label>Password of {account}<br>"
        "<input type=password name=password autocomplete=current-password required></label>"
        f"<button type=submit>Continue to {_e(pending.title)}</button></form>"
    )
    return _page(f"Connect {pending.title} to pasar", "".join(body))


def connected_page(outcome: ConsentOutcome) -> str:
    title = _e(outcome.title)
    pasar_account = _e(outcome.pasar_account)
    if outcome.provider_account:
        who = (
            f"<p>The {title} account <strong>{_e(outcome.provider_account)}</strong> is now "
            f"connected to the pasar account <strong>{pasar_account}</strong>.</p>"
        )
    else:
        who = (
            f"<p>A {title} account is now connected to the pasar account "
            f"<strong>{pasar_account}</strong> ({title} did not say which one).</p>"
        )
    message = (
        "Connected. You can close this page."
        if not outcome.still_missing
        else "Connected, but some permissions were not granted; the tools that need them stay "
        "disabled until you grant them."
    )
    body = [who, f"<p>{_e(message)}</p>"]
    if outcome.granted:
        body.append(f"<p>Granted:</p><ul>{_items(outcome.granted)}</ul>")
    if outcome.still_missing:
        body.append(f"<p>Not granted:</p><ul>{_items(outcome.still_missing)}</ul>")
    return _page(f"{outcome.title} connected", "".join(body))


def refused_page(error: PasarError) -> str:
    body = f"<p>{_e(error.message)}</p><p>Error code: <code>{_e(error.code)}</code></p>"
    return _page("Not connected", body, error=True)
