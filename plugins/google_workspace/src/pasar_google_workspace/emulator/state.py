"""What the Google emulator remembers: one signed-in user's grants, codes and tokens, their
mailbox, documents, spreadsheets, calendar and Drive, and injected faults."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from pasar_google_workspace.provider import GMAIL_MODIFY, GOOGLE

OPENID = "openid"
USERINFO_EMAIL = "https://www.googleapis.com/auth/userinfo.email"
USERINFO_PROFILE = "https://www.googleapis.com/auth/userinfo.profile"
# Google accepts the short OpenID names and answers with the long ones.
SCOPE_ALIASES = {"email": USERINFO_EMAIL, "profile": USERINFO_PROFILE}
IDENTITY_SCOPES = frozenset({OPENID, USERINFO_EMAIL, USERINFO_PROFILE})
MAIL_FULL = "https://mail.google.com/"
# Scopes Google knows that no pasar tool declares (another app of the same OAuth client may
# have been granted them; `include_granted_scopes` then brings them into pasar's grant).
UNLISTED_SCOPES = {MAIL_FULL: frozenset({GMAIL_MODIFY})}
SCOPE_IDS = (
    frozenset(scope.id for scope in GOOGLE.scopes)
    | IDENTITY_SCOPES
    | set(SCOPE_ALIASES)
    | set(UNLISTED_SCOPES)
)
_COVERS = {scope.id: scope.covers for scope in GOOGLE.scopes} | UNLISTED_SCOPES
ISSUER = "https://accounts.google.com"
ID_TOKEN_TTL_S = 3600


def canonical_scopes(scopes: list[str] | set[str]) -> set[str]:
    return {SCOPE_ALIASES.get(scope, scope) for scope in scopes}


def account_id(email: str) -> str:
    """A stable numeric `sub`, as Google's are."""
    return str(int(hashlib.sha256(email.encode()).hexdigest()[:15], 16))


def covered_by(scopes: frozenset[str] | set[str]) -> set[str]:
    """Every scope the given scopes grant, through Google's hierarchy."""
    seen: set[str] = set()
    todo = list(scopes)
    while todo:
        scope = todo.pop()
        if scope not in seen:
            seen.add(scope)
            todo.extend(_COVERS.get(scope, ()))
    return seen


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class Code:
    client_id: str
    redirect_uri: str
    scopes: frozenset[str]
    challenge: str | None
    challenge_method: str | None
    offline: bool
    force_refresh_token: bool
    expires_at: float
    account: str = "ada@example.com"
    """The email of the Google account that consented."""


@dataclass
class Token:
    client_id: str
    scopes: frozenset[str]
    expires_at: float | None  # None: refresh tokens do not expire
    account: str | None = None
    """The email of the Google account whose data the token reaches."""


@dataclass
class Fault:
    status: int
    times: int
    retry_after: int | None = None


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@dataclass
class EmulatorState:
    """Mutable and shared between the server thread and tests: every change holds `lock`."""

    user_email: str = "ada@example.com"
    clients: dict[str, str] | None = None
    """client id -> secret. None accepts any client id and secret."""
    auto_consent: bool = True
    access_token_ttl_s: int = 3599
    code_ttl_s: int = 300
    lock: threading.RLock = field(default_factory=threading.RLock)
    grants: dict[str, set[str]] = field(default_factory=dict)
    refresh_issued: set[str] = field(default_factory=set)
    codes: dict[str, Code] = field(default_factory=dict)
    access_tokens: dict[str, Token] = field(default_factory=dict)
    refresh_tokens: dict[str, Token] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)
    faults: dict[str, Fault] = field(default_factory=dict)
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    drafts: dict[str, dict[str, Any]] = field(default_factory=dict)
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    spreadsheets: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    _signing_key: rsa.RSAPrivateKey | None = None

    def __post_init__(self) -> None:
        self.seed()

    # OpenID ----------------------------------------------------------------------------------

    @property
    def signing_key(self) -> rsa.RSAPrivateKey:
        """The key that signs ID tokens (RS256), made on first use."""
        with self.lock:
            if self._signing_key is None:
                self._signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            return self._signing_key

    def key_id(self) -> str:
        numbers = self.signing_key.public_key().public_numbers()
        return hashlib.sha256(str(numbers.n).encode()).hexdigest()[:40]

    def jwks(self) -> dict[str, Any]:
        """What `https://www.googleapis.com/oauth2/v3/certs` answers."""
        key = jwt.algorithms.RSAAlgorithm.to_jwk(self.signing_key.public_key(), as_dict=True)
        return {"keys": [{**key, "kid": self.key_id(), "alg": "RS256", "use": "sig"}]}

    def id_token(self, client_id: str, scopes: frozenset[str], account: str) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER, "azp": client_id, "aud": client_id, "sub": account_id(account),
            "iat": now, "exp": now + ID_TOKEN_TTL_S,
        }  # fmt: skip
        if USERINFO_EMAIL in scopes:
            claims |= {"email": account, "email_verified": True}
        return jwt.encode(claims, self.signing_key, algorithm="RS256",
                          headers={"kid": self.key_id()})  # fmt: skip

    # OAuth -----------------------------------------------------------------------------------

    def new_code(self, code: Code) -> str:
        value = "4/" + secrets.token_urlsafe(24)
        with self.lock:
            self.codes[value] = code
        return value

    def issue(
        self,
        client_id: str,
        scopes: frozenset[str],
        *,
        with_refresh: bool,
        account: str | None = None,
        with_id_token: bool = False,
    ) -> dict[str, Any]:
        """A token response as Google's token endpoint answers it, for `account`'s data (with
        an ID token when `with_id_token`, for a code exchange that asked `openid`)."""
        access = "ya29." + secrets.token_urlsafe(32)
        id_token = (
            self.id_token(client_id, scopes, account)
            if with_id_token and account is not None and OPENID in scopes
            else None
        )
        with self.lock:
            self.access_tokens[access] = Token(
                client_id, scopes, time.time() + self.access_token_ttl_s, account
            )
            body: dict[str, Any] = {
                "access_token": access,
                "expires_in": self.access_token_ttl_s,
                "scope": " ".join(sorted(scopes)),
                "token_type": "Bearer",
            }
            if id_token is not None:
                body["id_token"] = id_token
            if with_refresh:
                refresh = "1//" + secrets.token_urlsafe(32)
                self.refresh_tokens[refresh] = Token(client_id, scopes, None, account)
                self.refresh_issued.add(client_id)
                body["refresh_token"] = refresh
        return body

    def revoke_grant(self, client_id: str) -> None:
        """What revoking any token of a grant does at Google: the whole grant goes."""
        with self.lock:
            self.grants.pop(client_id, None)
            self.refresh_issued.discard(client_id)
            for tokens in (self.access_tokens, self.refresh_tokens):
                for value in [v for v, t in tokens.items() if t.client_id == client_id]:
                    del tokens[value]

    def expire_access_tokens(self) -> None:
        with self.lock:
            for token in self.access_tokens.values():
                token.expires_at = time.time() - 1

    def inject(
        self, path_prefix: str, status: int, *, times: int = 1, retry_after: int | None = None
    ) -> None:
        """The next `times` API calls under `path_prefix` fail with `status`."""
        with self.lock:
            self.faults[path_prefix] = Fault(status, times, retry_after)

    def take_fault(self, path: str) -> Fault | None:
        with self.lock:
            for prefix, fault in list(self.faults.items()):
                if path.startswith(prefix):
                    fault.times -= 1
                    if fault.times <= 0:
                        del self.faults[prefix]
                    return fault
        return None

    # Data ------------------------------------------------------------------------------------

    def seed(self) -> None:
        """A small, realistic account: three emails, a doc, a sheet, two events."""
        now = "2025-03-03T09:00:00.000Z"
        mails = [
            ("m1", "Ana Lima <ana@example.com>", "Q1 budget", "Numbers attached, please review."),
            ("m2", "Bo Chen <bo@example.com>", "Lunch on Friday?", "Are you free at noon?"),
            ("m3", "Ana Lima <ana@example.com>", "Re: Q1 budget", "Updated the totals."),
        ]
        for index, (mid, sender, subject, body) in enumerate(mails):
            self.messages[mid] = {
                "id": mid,
                "threadId": "t-" + mid,
                "labelIds": ["INBOX", "UNREAD"],
                "snippet": body[:100],
                "internalDate": str(1_740_992_400_000 + index * 60_000),
                "payload": {
                    "mimeType": "text/plain",
                    "headers": [
                        {"name": "From", "value": sender},
                        {"name": "To", "value": self.user_email},
                        {"name": "Subject", "value": subject},
                        {"name": "Date", "value": f"Mon, 3 Mar 2025 09:0{index}:00 +0000"},
                    ],
                    "body": {"size": len(body), "data": _b64(body)},
                },
                "sizeEstimate": 400 + len(body),
            }
        self.add_document("doc1", "Meeting notes", "Agenda\nBudget review\n")
        self.add_spreadsheet(
            "sheet1", "Budget 2025", {"Sheet1": [["Item", "Cost"], ["Rent", "1200"]]}
        )
        for eid, summary, start, end in (
            ("ev1", "Standup", "2025-03-03T09:30:00Z", "2025-03-03T09:45:00Z"),
            ("ev2", "Budget review", "2025-03-04T14:00:00Z", "2025-03-04T15:00:00Z"),
        ):
            self.events[eid] = {
                "kind": "calendar#event",
                "id": eid,
                "status": "confirmed",
                "htmlLink": f"https://www.google.com/calendar/event?eid={eid}",
                "created": now,
                "updated": now,
                "summary": summary,
                "start": {"dateTime": start},
                "end": {"dateTime": end},
                "organizer": {"email": self.user_email, "self": True},
            }

    def add_document(self, doc_id: str, title: str, text: str) -> None:
        with self.lock:
            self.documents[doc_id] = {
                "documentId": doc_id,
                "title": title,
                "text": text,
                "revisionId": secrets.token_hex(8),
            }
            self.files[doc_id] = {
                "id": doc_id,
                "name": title,
                "mimeType": "application/vnd.google-apps.document",
                "modifiedTime": "2025-03-01T10:00:00.000Z",
                "webViewLink": f"https://docs.google.com/document/d/{doc_id}/edit",
            }

    def add_spreadsheet(self, sheet_id: str, title: str, tabs: dict[str, list[list[str]]]) -> None:
        with self.lock:
            self.spreadsheets[sheet_id] = {
                "spreadsheetId": sheet_id,
                "title": title,
                "tabs": {k: [list(r) for r in v] for k, v in tabs.items()},
            }
            self.files[sheet_id] = {
                "id": sheet_id,
                "name": title,
                "mimeType": "application/vnd.google-apps.spreadsheet",
                "modifiedTime": "2025-03-02T10:00:00.000Z",
                "webViewLink": f"https://docs.google.com/spreadsheets/d/{sheet_id}/edit",
            }
