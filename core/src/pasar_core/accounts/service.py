"""Sign-up, log-in, API keys and request authentication: shared by REST, GraphQL and the CLI."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from pasar_core.accounts import refresh_tokens
from pasar_core.accounts.access_tokens import AccessToken
from pasar_core.accounts.api_keys import generate_api_key, hash_api_key, looks_like_api_key
from pasar_core.accounts.passwords import hash_password, verify_password
from pasar_core.accounts.principal import Principal
from pasar_core.accounts.refresh_tokens import IssuedRefresh
from pasar_core.errors import Conflict, Unauthenticated
from pasar_core.services import Services
from pasar_core.storage.models import ApiKey, User

EMAIL_PATTERN = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
ROLES = ("admin", "member", "viewer")
LAST_USED_RESOLUTION = timedelta(minutes=5)


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


class ApiKeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="default", min_length=1, max_length=100)


@dataclass(frozen=True, slots=True)
class CreatedApiKey:
    id: uuid.UUID
    name: str
    prefix: str
    key: str
    created_at: datetime


async def sign_up(services: Services, credentials: Credentials, role: str = "member") -> User:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    password_hash = await hash_password(credentials.password)
    user = User(email=credentials.email, password_hash=password_hash, role=role)
    try:
        async with services.sessionmaker.begin() as session:
            session.add(user)
    except IntegrityError:
        raise Conflict("an account with this email already exists") from None
    return user


@dataclass(frozen=True, slots=True)
class TokenPair:
    access: AccessToken
    refresh: IssuedRefresh


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(min_length=1, max_length=refresh_tokens.MAX_LENGTH)


async def log_in(services: Services, credentials: Credentials) -> TokenPair:
    services.login_throttle.check(credentials.email)
    async with services.sessionmaker() as session:
        user = await session.scalar(select(User).where(User.email == credentials.email))
    if not await verify_password(user.password_hash if user else None, credentials.password):
        services.login_throttle.failed(credentials.email)
        raise Unauthenticated("wrong email or password")
    assert user is not None
    services.login_throttle.succeeded(credentials.email)
    async with services.sessionmaker.begin() as session:
        refresh = await refresh_tokens.issue(
            session, user.id, services.settings.refresh_token_ttl_s
        )
    return TokenPair(services.tokens.issue(user.id, user.role), refresh)


async def refresh_session(services: Services, token: str) -> TokenPair:
    """A new access token and the next refresh token, spending `token`."""
    try:
        async with services.sessionmaker.begin() as session:
            user, refresh = await refresh_tokens.rotate(
                session, token, services.settings.refresh_token_ttl_s
            )
    except refresh_tokens.RefreshTokenReused as reused:
        async with services.sessionmaker.begin() as session:  # committed, unlike the above
            await refresh_tokens.revoke_family(session, reused.family_id)
        raise
    return TokenPair(services.tokens.issue(user.id, user.role), refresh)


async def log_out(services: Services, token: str) -> None:
    async with services.sessionmaker.begin() as session:
        await refresh_tokens.revoke(session, token)


async def create_api_key(services: Services, principal: Principal, name: str) -> CreatedApiKey:
    new_key = generate_api_key()
    row = ApiKey(
        user_id=principal.user_id, name=name, prefix=new_key.prefix, key_hash=new_key.key_hash
    )
    async with services.sessionmaker.begin() as session:
        session.add(row)
        await session.flush()
        await session.refresh(row)
    return CreatedApiKey(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        key=new_key.plaintext,
        created_at=row.created_at,
    )


async def authenticate(services: Services, credential: str) -> Principal:
    """A bearer JWT or an API key (`psr_...`) -> the user it stands for."""
    if looks_like_api_key(credential):
        return await _authenticate_api_key(services, credential)
    claims = services.tokens.verify(credential)
    async with services.sessionmaker() as session:
        user = await session.get(User, claims.user_id)
    if user is None:
        raise Unauthenticated("the access token's user no longer exists")
    return Principal(user_id=user.id, email=user.email, role=user.role, via="token")


async def _authenticate_api_key(services: Services, plaintext: str) -> Principal:
    async with services.sessionmaker.begin() as session:
        row = await session.scalar(
            select(ApiKey).where(
                ApiKey.key_hash == hash_api_key(plaintext), ApiKey.revoked_at.is_(None)
            )
        )
        if row is None:
            raise Unauthenticated("the API key is invalid or revoked")
        user = await session.get(User, row.user_id)
        if user is None:
            raise Unauthenticated("the API key's user no longer exists")
        now = datetime.now(UTC)
        if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
            row.last_used_at = now
        return Principal(user_id=user.id, email=user.email, role=user.role, via="api_key")
