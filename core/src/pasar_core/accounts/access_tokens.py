"""Signed JWT access tokens (HS256) carrying the user id and role."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt

from pasar_core.errors import Unauthenticated

ISSUER = "pasar"
ALGORITHM = "HS256"


@dataclass(frozen=True, slots=True)
class AccessToken:
    token: str
    expires_in: int
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: uuid.UUID
    role: str


class TokenSigner:
    """Issues and checks access tokens with the server's secret key."""

    def __init__(self, secret_key: str, ttl_s: int) -> None:
        self._key = secret_key
        self._ttl_s = ttl_s

    @property
    def secret(self) -> str:
        """The server's secret key (also the root of derived secrets such as webhook keys)."""
        return self._key

    def issue(self, user_id: uuid.UUID, role: str) -> AccessToken:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": str(user_id),
            "role": role,
            "typ": "access",
            "iat": now,
            "exp": now + self._ttl_s,
            "jti": uuid.uuid4().hex,
        }
        return AccessToken(token=jwt.encode(claims, self._key, ALGORITHM), expires_in=self._ttl_s)

    def verify(self, token: str) -> TokenClaims:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the access token has expired; log in again") from None
        except jwt.PyJWTError:
            raise Unauthenticated("the access token is invalid") from None
        if claims.get("typ") != "access":
            raise Unauthenticated("the access token is invalid")
        try:
            return TokenClaims(user_id=uuid.UUID(claims["sub"]), role=str(claims.get("role")))
        except ValueError:
            raise Unauthenticated("the access token is invalid") from None
