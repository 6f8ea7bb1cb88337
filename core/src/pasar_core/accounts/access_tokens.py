"""Signed JWT access tokens (HS256) carrying the user id, email, organisation, role in it,
operator flag and session id.

The claims are the caller's identity on the hot path: authenticating a request reads no row
(see `pasar_core.accounts.service.authenticate`). They are the user as it was when the token
was issued; changing a member's role, removing a member, changing the operator flag or deleting
a user through pasar revokes the user's sessions, so no token outlives the change.

The session id (`sid`) is the refresh-token family the token belongs to: logging out or changing
the password revokes the session, and every access token carrying its id is refused from then on
(see pasar_core.accounts.revocations)."""

from __future__ import annotations

import base64
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass

import jwt

from pasar_core.errors import Unauthenticated

ISSUER = "pasar"
ALGORITHM = "HS256"
VERIFIED_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class AccessToken:
    token: str
    expires_in: int
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: uuid.UUID
    role: str
    session_id: uuid.UUID
    organisation_id: uuid.UUID
    email: str | None = None
    """None in tokens issued before the email was a claim (they expire within the TTL)."""
    operator: bool = False


class TokenSigner:
    """Issues and checks access tokens with the server's secret key."""

    def __init__(self, secret_key: str, ttl_s: int) -> None:
        self._key = secret_key
        self._ttl_s = ttl_s
        # A prepared key: PyJWT otherwise re-checks a str key (PEM? SSH?) on every decode.
        encoded = base64.urlsafe_b64encode(secret_key.encode()).rstrip(b"=").decode()
        self._jwk = jwt.PyJWK({"kty": "oct", "k": encoded}, algorithm=ALGORITHM)
        self._verified: OrderedDict[str, tuple[TokenClaims, float]] = OrderedDict()
        """Tokens whose signature and claims were checked, with their expiry: a client sends
        the same token with every request, so a repeat is a dictionary look-up."""

    @property
    def secret(self) -> str:
        """The server's secret key (also the root of derived secrets such as webhook keys)."""
        return self._key

    @property
    def ttl_s(self) -> int:
        """How long an access token lives: how long a revoked session must stay denylisted."""
        return self._ttl_s

    def issue(
        self,
        user_id: uuid.UUID,
        role: str,
        session_id: uuid.UUID,
        email: str,
        organisation_id: uuid.UUID,
        *,
        operator: bool = False,
    ) -> AccessToken:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": str(user_id),
            "sid": str(session_id),
            "email": email,
            "role": role,
            "org": str(organisation_id),
            "op": operator,
            "typ": "access",
            "iat": now,
            "exp": now + self._ttl_s,
            "jti": uuid.uuid4().hex,
        }
        return AccessToken(token=jwt.encode(claims, self._key, ALGORITHM), expires_in=self._ttl_s)

    def verify(self, token: str) -> TokenClaims:
        """The token's claims if it is ours, unexpired and well-formed (revocation is the
        caller's check: pasar_core.accounts.revocations)."""
        known = self._verified.get(token)
        if known is not None:
            if known[1] > time.time():
                self._verified.move_to_end(token)
                return known[0]
            del self._verified[token]  # expired: decoding says so
        decoded = self._decode(token)
        self._verified[token] = decoded
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return decoded[0]

    def _decode(self, token: str) -> tuple[TokenClaims, float]:
        try:
            claims = jwt.decode(
                token,
                self._jwk,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                # Tokens without a session id cannot be revoked, so they are not accepted.
                options={"require": ["exp", "iat", "sub", "iss", "sid", "org"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the access token has expired; log in again") from None
        except jwt.PyJWTError:
            raise Unauthenticated("the access token is invalid") from None
        email = claims.get("email")
        operator = claims.get("op", False)
        if (
            claims.get("typ") != "access"
            or not isinstance(email, (str, type(None)))
            or not isinstance(operator, bool)
        ):
            raise Unauthenticated("the access token is invalid")
        try:
            verified = TokenClaims(
                user_id=uuid.UUID(claims["sub"]),
                role=str(claims.get("role")),
                session_id=uuid.UUID(claims["sid"]),
                organisation_id=uuid.UUID(claims["org"]),
                email=email,
                operator=operator,
            )
            return verified, float(claims["exp"])
        except (ValueError, TypeError, AttributeError):
            raise Unauthenticated("the access token is invalid") from None
