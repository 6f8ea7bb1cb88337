"""Pull the caller's credential out of request headers (shared by REST and GraphQL)."""

from __future__ import annotations

from collections.abc import Mapping

from pasar_core.errors import Unauthenticated

MAX_CREDENTIAL_LENGTH = 4096


def credential_from_headers(headers: Mapping[str, str]) -> str | None:
    """`Authorization: Bearer <jwt or api key>` or `X-API-Key: <api key>`; None when absent."""
    authorization = headers.get("authorization")
    api_key = headers.get("x-api-key")
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthenticated("the Authorization header must be 'Bearer <token or API key>'")
        credential = value.strip()
    elif api_key:
        credential = api_key.strip()
    else:
        return None
    if len(credential) > MAX_CREDENTIAL_LENGTH:
        raise Unauthenticated("the credential is too long")
    return credential
