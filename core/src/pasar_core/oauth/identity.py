"""Which provider account consented: the OpenID Connect ID token of a code exchange.

The token comes straight from the provider's token endpoint over the server's own connection,
authenticated with the client secret, so its origin is established by that channel (OpenID
Connect Core 3.1.3.7; Google's guide says the same): the claims are checked (`iss`, `aud`,
`exp`), the signature is not fetched and verified.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from pasar_core.errors import ConsentCodeRejected
from pasar_core.oauth.clients import ProviderClient

CLOCK_SKEW_S = 300


@dataclass(frozen=True, slots=True)
class ProviderAccount:
    subject: str
    email: str | None


def consenting_account(client: ProviderClient, token: Mapping[str, Any]) -> ProviderAccount | None:
    """The account named by the token response's `id_token`; None when there is none.

    `ConsentCodeRejected` when there is one that is malformed or not meant for this client."""
    raw = token.get("id_token")
    if not client.spec.identity_scopes or not isinstance(raw, str) or not raw:
        return None
    try:
        claims = jwt.decode(raw, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise ConsentCodeRejected(f"{client.spec.title} sent a malformed ID token") from None
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    expires = claims.get("exp")
    subject = claims.get("sub")
    if (
        claims.get("iss") not in client.spec.id_token_issuers
        or client.client_id not in audiences
        or not isinstance(expires, int | float)
        or expires < time.time() - CLOCK_SKEW_S
        or not isinstance(subject, str)
        or not subject
    ):
        raise ConsentCodeRejected(f"{client.spec.title} sent an ID token not meant for pasar")
    email = claims.get("email")
    return ProviderAccount(subject[:255], email[:320] if isinstance(email, str) else None)
