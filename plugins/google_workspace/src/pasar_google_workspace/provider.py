"""Google as an OAuth provider: endpoints, scope hierarchy and risk classes, authorize params."""

from __future__ import annotations

from pasar_core.specs import AuthProviderSpec, ScopeRisk, ScopeSpec

PREFIX = "https://www.googleapis.com/auth/"

GMAIL_READONLY = PREFIX + "gmail.readonly"
GMAIL_COMPOSE = PREFIX + "gmail.compose"
GMAIL_SEND = PREFIX + "gmail.send"
GMAIL_MODIFY = PREFIX + "gmail.modify"
DOCUMENTS = PREFIX + "documents"
DOCUMENTS_READONLY = PREFIX + "documents.readonly"
SPREADSHEETS = PREFIX + "spreadsheets"
SPREADSHEETS_READONLY = PREFIX + "spreadsheets.readonly"
CALENDAR = PREFIX + "calendar"
CALENDAR_READONLY = PREFIX + "calendar.readonly"
CALENDAR_EVENTS = PREFIX + "calendar.events"
CALENDAR_EVENTS_READONLY = PREFIX + "calendar.events.readonly"
DRIVE = PREFIX + "drive"
DRIVE_READONLY = PREFIX + "drive.readonly"
DRIVE_FILE = PREFIX + "drive.file"
DRIVE_METADATA_READONLY = PREFIX + "drive.metadata.readonly"

R = ScopeRisk
SCOPES = (
    ScopeSpec(
        GMAIL_MODIFY,
        R.RESTRICTED,
        "Read, compose and send your email",
        frozenset({GMAIL_READONLY, GMAIL_COMPOSE, GMAIL_SEND}),
    ),
    ScopeSpec(GMAIL_READONLY, R.RESTRICTED, "Read your email messages and settings"),
    ScopeSpec(GMAIL_COMPOSE, R.RESTRICTED, "Manage drafts and send email"),
    ScopeSpec(GMAIL_SEND, R.SENSITIVE, "Send email on your behalf"),
    ScopeSpec(
        DOCUMENTS,
        R.SENSITIVE,
        "See, edit, create and delete your Google Docs",
        frozenset({DOCUMENTS_READONLY}),
    ),
    ScopeSpec(DOCUMENTS_READONLY, R.SENSITIVE, "See your Google Docs"),
    ScopeSpec(
        SPREADSHEETS,
        R.SENSITIVE,
        "See, edit, create and delete your spreadsheets",
        frozenset({SPREADSHEETS_READONLY}),
    ),
    ScopeSpec(SPREADSHEETS_READONLY, R.SENSITIVE, "See your spreadsheets"),
    ScopeSpec(
        CALENDAR,
        R.SENSITIVE,
        "See, edit, share and delete your calendars",
        frozenset({CALENDAR_READONLY, CALENDAR_EVENTS}),
    ),
    ScopeSpec(
        CALENDAR_READONLY,
        R.SENSITIVE,
        "See and download your calendars",
        frozenset({CALENDAR_EVENTS_READONLY}),
    ),
    ScopeSpec(
        CALENDAR_EVENTS,
        R.SENSITIVE,
        "View and edit events on your calendars",
        frozenset({CALENDAR_EVENTS_READONLY}),
    ),
    ScopeSpec(CALENDAR_EVENTS_READONLY, R.SENSITIVE, "View events on your calendars"),
    ScopeSpec(
        DRIVE,
        R.RESTRICTED,
        "See, edit, create and delete all your Drive files",
        frozenset({DRIVE_READONLY, DRIVE_FILE}),
    ),
    ScopeSpec(
        DRIVE_READONLY,
        R.RESTRICTED,
        "See and download all your Drive files",
        frozenset({DRIVE_METADATA_READONLY}),
    ),
    ScopeSpec(
        DRIVE_FILE, R.NON_SENSITIVE, "Only the Drive files this app creates or you open with it"
    ),
    ScopeSpec(DRIVE_METADATA_READONLY, R.RESTRICTED, "See information about your Drive files"),
)

GOOGLE = AuthProviderSpec(
    id="google",
    title="Google",
    authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
    token_url="https://oauth2.googleapis.com/token",  # noqa: S106 - a URL, not a secret
    revoke_url="https://oauth2.googleapis.com/revoke",
    scopes=SCOPES,
    authorize_params={"access_type": "offline", "include_granted_scopes": "true"},
    # Non-sensitive: the account's id and primary email, shown on the result page so a person
    # sees which Google account they connected (Google answers them as an OpenID ID token).
    identity_scopes=("openid", "email"),
    id_token_issuers=("https://accounts.google.com", "accounts.google.com"),
    # Google accepts a `scope` subset on refresh: each agent gets a token for its scopes only.
    narrows_on_refresh=True,
)
