"""Sign-up, log-in, sessions, password change and request authentication: shared by REST,
GraphQL and the CLI (API keys: pasar_core.accounts.api_key_store)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pasar_core.accounts import refresh_tokens, revocations
from pasar_core.accounts.access_tokens import AccessToken
from pasar_core.accounts.api_key_store import (
    authenticate_api_key,
    count_active_api_keys,
    revoke_user_api_keys,
)
from pasar_core.accounts.api_keys import looks_like_api_key
from pasar_core.accounts.passwords import hash_password, verify_password
from pasar_core.accounts.principal import Principal
from pasar_core.accounts.refresh_tokens import IssuedRefresh
from pasar_core.audit import record as audit
from pasar_core.audit.record import CLI, Action, Actor
from pasar_core.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PasarError,
    RoleEscalation,
    Unauthenticated,
    ValidationFailed,
)
from pasar_core.organisations.store import add_personal, default_membership, membership_role
from pasar_core.services import Services
from pasar_core.storage.models import User

EMAIL_PATTERN = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
CLOCK_MARGIN_S = 60  # between this process's clock and the database's


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    email: str = Field(max_length=320)
    password: str = Field(min_length=8, max_length=1024)

    @field_validator("email")
    @classmethod
    def _normalise_email(cls, value: str) -> str:
        value = value.strip().lower()
        if not EMAIL_PATTERN.match(value):
            raise ValueError("not a valid email address")
        return value


@dataclass(frozen=True, slots=True)
class SignedUp:
    user: User
    organisation_id: uuid.UUID
    """The user's personal organisation, where they are admin."""


async def sign_up(
    services: Services, credentials: Credentials, *, operator: bool = False
) -> SignedUp:
    """A new user and their personal organisation (they are its admin)."""
    password_hash = await hash_password(credentials.password, services.settings.password_hashing)
    user = User(email=credentials.email, password_hash=password_hash, operator=operator)
    try:
        async with services.sessionmaker.begin() as session:
            session.add(user)
            await session.flush()
            organisation_id = await add_personal(session, user)
    except IntegrityError:
        raise Conflict("an account with this email already exists") from None
    return SignedUp(user, organisation_id)


async def user_by_email(services: Services, email: str) -> User:
    """The user with this email (any case); NOT_FOUND otherwise."""
    async with services.sessionmaker() as session:
        user = await session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise NotFound(f"no user with email {email[:320]!r}")
    return user


@dataclass(frozen=True, slots=True)
class TokenPair:
    access: AccessToken
    refresh: IssuedRefresh


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(min_length=1, max_length=refresh_tokens.MAX_LENGTH)


async def log_in(services: Services, credentials: Credentials, source: str) -> TokenPair:
    """Email and password -> a new session. The attempt is counted before the password is
    checked (see pasar_core.accounts.throttle); `source` is the client's address key."""
    logins = services.metrics.logins
    try:
        pair = await _log_in(services, credentials, source)
    except Unauthenticated:
        logins.labels(outcome="failure").inc()
        raise
    except PasarError as error:  # throttled (429), or the database is busy (503)
        logins.labels(outcome="throttled" if error.status == 429 else "error").inc()
        raise
    logins.labels(outcome="success").inc()
    return pair


async def _log_in(services: Services, credentials: Credentials, source: str) -> TokenPair:
    attempt = await services.login_throttle.reserve(credentials.email, source)
    async with services.sessionmaker() as session:
        user = await session.scalar(select(User).where(User.email == credentials.email))
    known_hash = user.password_hash if user else None
    if not await verify_password(
        known_hash, credentials.password, services.settings.password_hashing
    ):
        # Its own transaction: a failure has no other. Throttled attempts (refused above,
        # before any work) are not written, so a flood costs no database writes.
        async with services.sessionmaker.begin() as session:
            await audit.record(session, Action.LOGIN_FAILED,
                               Actor(user.id if user else None, "token", source=source),
                               outcome="failed",
                               details={"reason": "wrong_password" if user else "unknown_email"})  # fmt: skip
        raise Unauthenticated("wrong email or password")
    assert user is not None
    await attempt.succeeded()
    async with services.sessionmaker.begin() as session:
        organisation_id, role = await default_membership(session, user.id)
        refresh = await refresh_tokens.issue(
            session, user.id, services.settings.refresh_token_ttl_s, organisation_id
        )
        await audit.record(session, Action.LOGIN, Actor(user.id, "token", source=source),
                           target=("user", user.id))  # fmt: skip
    return _pair(services, user, role, organisation_id, refresh)


def _pair(
    services: Services,
    user: User,
    role: str,
    organisation_id: uuid.UUID,
    refresh: IssuedRefresh,
) -> TokenPair:
    access = services.tokens.issue(
        user.id, role, refresh.family_id, user.email, organisation_id, operator=user.operator
    )
    return TokenPair(access, refresh)


class SwitchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    organisation_id: uuid.UUID


async def switch_organisation(
    services: Services, principal: Principal, organisation_id: uuid.UUID
) -> TokenPair:
    """A new session acting in another organisation of the caller's (NOT_FOUND when they are
    not a member: another organisation's id is reported like a missing one)."""
    if principal.via != "token":  # a session carries the full role: more than a capped key
        raise RoleEscalation("an API key cannot open a session; log in with the password")
    async with services.sessionmaker.begin() as session:
        user = await session.get(User, principal.user_id)
        role = await membership_role(session, principal.user_id, organisation_id)
        if user is None or role is None:
            raise NotFound(f"no organisation with id {str(organisation_id)!r}")
        refresh = await refresh_tokens.issue(
            session, user.id, services.settings.refresh_token_ttl_s, organisation_id
        )
    return _pair(services, user, role, organisation_id, refresh)


async def refresh_session(services: Services, token: str) -> TokenPair:
    """A new access token and the next refresh token, spending `token`."""
    refreshes = services.metrics.token_refreshes
    try:
        pair = await _refresh_session(services, token)
    except refresh_tokens.RefreshTokenReused:
        refreshes.labels(provider="pasar", outcome="reused").inc()
        raise
    except PasarError:
        refreshes.labels(provider="pasar", outcome="failure").inc()
        raise
    refreshes.labels(provider="pasar", outcome="success").inc()
    return pair


async def _refresh_session(services: Services, token: str) -> TokenPair:
    try:
        async with services.sessionmaker.begin() as session:
            user, refresh, organisation_id = await refresh_tokens.rotate(
                session, token, services.settings.refresh_token_ttl_s
            )
            role = await membership_role(session, user.id, organisation_id)
            if role is None:  # removed from the organisation meanwhile (sessions were ended)
                raise Unauthenticated("you are no longer a member of the session's organisation")
    except refresh_tokens.RefreshTokenReused as reused:
        async with services.sessionmaker.begin() as session:  # committed, unlike the above
            await refresh_tokens.revoke_family(session, reused.family_id)
            until = await revocations.revoke(
                session, reused.user_id, [reused.family_id], services.tokens.ttl_s
            )
        services.revoked_sessions.add([reused.family_id], until)
        raise
    return _pair(services, user, role, organisation_id, refresh)


async def log_out(services: Services, token: str) -> None:
    """Revoke the session of a refresh token: the token, every token rotated from it, and the
    access tokens issued with them (refused from now on in every process)."""
    async with services.sessionmaker.begin() as session:
        ended = await refresh_tokens.revoke(session, token)
        if ended is None:
            return
        user_id, family_id = ended
        until = await revocations.revoke(session, user_id, [family_id], services.tokens.ttl_s)
    services.revoked_sessions.add([family_id], until)


class WrongPassword(Forbidden):
    code = "WRONG_PASSWORD"


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=8, max_length=1024)
    revoke_api_keys: bool = False
    """API keys are kept unless this is true (they are credentials of their own, listed by
    GET /api-keys and revoked one by one or all at once here)."""


@dataclass(frozen=True, slots=True)
class PasswordChanged:
    tokens: TokenPair
    """A new session for the caller: every earlier one was revoked."""
    sessions_revoked: int
    api_keys_revoked: int
    api_keys_active: int


async def change_password(
    services: Services, principal: Principal, change: PasswordChange, source: str
) -> PasswordChanged:
    """Check the current password (throttled like a log-in), set the new one, and revoke every
    session of the user with their access tokens; the caller gets a new session."""
    if change.new_password == change.current_password:
        raise ValidationFailed("the new password must differ from the current one")
    attempt = await services.login_throttle.reserve(principal.email, source)
    async with services.sessionmaker() as session:
        current_hash = await session.scalar(
            select(User.password_hash).where(User.id == principal.user_id)
        )
    if current_hash is None:
        raise Unauthenticated("the account no longer exists")
    if not await verify_password(current_hash, change.current_password):
        async with services.sessionmaker.begin() as session:
            await audit.record(session, Action.PASSWORD_CHANGED, Actor.of(principal),
                               target=("user", principal.user_id), outcome="failed",
                               details={"reason": "wrong_password"})  # fmt: skip
        raise WrongPassword("the current password is wrong")
    await attempt.succeeded()
    new_hash = await hash_password(change.new_password, services.settings.password_hashing)
    keep_s = services.tokens.ttl_s
    live_since = datetime.now(UTC) - timedelta(seconds=keep_s + CLOCK_MARGIN_S)
    async with services.sessionmaker.begin() as session:
        user = await session.get(User, principal.user_id, with_for_update=True)
        if user is None or user.password_hash != current_hash:
            raise Conflict("the password was changed meanwhile; try again")
        user.password_hash = new_hash
        sessions = await refresh_tokens.revoke_all(session, user.id, live_since)
        until = await revocations.revoke(session, user.id, sessions, keep_s)
        keys_revoked = await revoke_user_api_keys(session, user.id) if change.revoke_api_keys else 0
        keys_active = await count_active_api_keys(session, user.id)
        role = await membership_role(session, user.id, principal.organisation_id)
        organisation_id = principal.organisation_id
        if role is None:
            organisation_id, role = await default_membership(session, user.id)
        refresh = await refresh_tokens.issue(
            session, user.id, services.settings.refresh_token_ttl_s, organisation_id
        )
        await audit.record(session, Action.PASSWORD_CHANGED, Actor.of(principal),
                           target=("user", user.id),
                           details={"sessions_revoked": len(sessions),
                                    "api_keys_revoked": keys_revoked})  # fmt: skip
    services.revoked_sessions.add(sessions, until)
    pair = _pair(services, user, role, organisation_id, refresh)
    return PasswordChanged(pair, len(sessions), keys_revoked, keys_active)


async def end_every_session(
    session: AsyncSession,
    services: Services,
    user_id: uuid.UUID,
    *,
    organisation_id: uuid.UUID | None = None,
) -> tuple[list[uuid.UUID], float]:
    """Revoke every refresh token of the user (only of the sessions acting in
    `organisation_id` when given) and denylist the sessions that may still hold live access
    tokens (within the caller's transaction); returns them and until when."""
    keep_s = services.tokens.ttl_s
    live_since = datetime.now(UTC) - timedelta(seconds=keep_s + CLOCK_MARGIN_S)
    sessions = await refresh_tokens.revoke_all(session, user_id, live_since, organisation_id)
    until = await revocations.revoke(session, user_id, sessions, keep_s)
    return sessions, until


async def set_operator(
    services: Services, email: str, operator: bool, *, actor: Actor = CLI
) -> User:
    """Make a user the server's operator or not. Access tokens carry the flag, so every
    session of the user ends (in every process): the user logs in again."""
    async with services.sessionmaker.begin() as session:
        user = await session.scalar(
            select(User).where(User.email == email.strip().lower()).with_for_update()
        )
        if user is None:
            raise NotFound(f"no user with email {email[:320]!r}")
        previous, user.operator = user.operator, operator
        sessions, until = await end_every_session(session, services, user.id)
        await audit.record(session, Action.OPERATOR_CHANGED, actor, target=("user", user.id),
                           details={"from": previous, "to": operator})  # fmt: skip
    services.revoked_sessions.add(sessions, until)
    return user


async def delete_user(services: Services, email: str, *, actor: Actor = CLI) -> uuid.UUID:
    """Delete a user and everything they own. Their access tokens are refused at once, in
    every process, for as long as they could live (the denylist rows outlive the user)."""
    async with services.sessionmaker.begin() as session:
        user = await session.scalar(
            select(User).where(User.email == email.strip().lower()).with_for_update()
        )
        if user is None:
            raise NotFound(f"no user with email {email[:320]!r}")
        user_id = user.id
        sessions, until = await end_every_session(session, services, user_id)
        await session.delete(user)
        await audit.record(session, Action.USER_DELETED, actor, target=("user", user_id))
    services.revoked_sessions.add(sessions, until)
    return user_id


async def authenticate(services: Services, credential: str) -> Principal:
    """A bearer JWT or an API key (`psr_...`) -> the user it stands for."""
    if looks_like_api_key(credential):
        return await authenticate_api_key(services, credential)
    claims = services.tokens.verify(credential)
    # From memory while this process's revocation listener is up: no query per request.
    if await revocations.is_revoked(
        services.revoked_sessions, services.sessionmaker, claims.session_id
    ):
        raise Unauthenticated(
            "the session has ended (logged out or password changed); log in again"
        )
    email = claims.email
    if email is None:  # a token from before email was a claim
        async with services.sessionmaker() as session:
            email = await session.scalar(select(User.email).where(User.id == claims.user_id))
        if email is None:
            raise Unauthenticated("the access token's user no longer exists")
    # The hot path: the identity is the token's, no query. A changed role or membership
    # revoked the sessions that carried the old one.
    return Principal(
        claims.user_id, email, claims.role, via="token",
        organisation_id=claims.organisation_id, operator=claims.operator,
    )  # fmt: skip
