"""API keys of a user: create (optionally expiring), list, revoke, and authenticate with one.

The key itself is shown once, at creation; afterwards only its prefix identifies it. A revoked or
expired key is refused. Another user's key is simply not found. A key acts in one organisation
with a role no stronger than its creator's there (asking for more is ROLE_ESCALATION); each use
applies the weaker of the key's role and its creator's current one, read in the key's own
statement, so a demotion or removal applies to the key at once. A key carries the server
operator's powers only when it was created with `operator: true` (only the operator may ask,
from a session or a key that carries them) and its creator is still the operator.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    field_validator,
    model_validator,
)
from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pasar_core.accounts.api_keys import KEY_PREFIX, generate_api_key, hash_api_key
from pasar_core.accounts.principal import Principal
from pasar_core.audit import record as audit
from pasar_core.audit.record import CLI, Action, Actor
from pasar_core.authz.roles import Role, at_least, weaker
from pasar_core.errors import Conflict, NotFound, RoleEscalation, Unauthenticated
from pasar_core.organisations.store import default_membership, membership_role
from pasar_core.printable import unprintable
from pasar_core.services import Services
from pasar_core.storage.models import ApiKey, Membership, User

MAX_LIFETIME_S = 10 * 365 * 86_400
LAST_USED_RESOLUTION = timedelta(minutes=5)
MAX_PAGE = 500

ApiKeyStatus = Literal["active", "expired", "revoked"]


class ApiKeyRequest(BaseModel):
    """A new key: its name, and when it expires (`expires_in_s` or `expires_at`, not both;
    neither: it lasts until revoked)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="default", min_length=1, max_length=100)
    role: Role | None = None
    """The key's role in the organisation; default (and at most): the creator's."""
    operator: StrictBool = False
    """Whether the key carries its creator's operator powers (only the operator may ask)."""
    expires_in_s: int | None = Field(default=None, ge=60, le=MAX_LIFETIME_S)
    expires_at: AwareDatetime | None = None

    @field_validator("name")
    @classmethod
    def _printable_name(cls, name: str) -> str:
        char = unprintable(name)
        if char is not None:  # a key's name is printed in lists (the CLI's tables, the page)
            raise ValueError(f"the name must not contain control characters ({char!r})")
        return name

    @model_validator(mode="after")
    def _one_expiry(self) -> Self:
        if self.expires_in_s is not None and self.expires_at is not None:
            raise ValueError("give expires_in_s or expires_at, not both")
        if self.expires_at is not None:
            now = datetime.now(UTC)
            if self.expires_at <= now:
                raise ValueError("expires_at must be in the future")
            if self.expires_at > now + timedelta(seconds=MAX_LIFETIME_S):
                raise ValueError("expires_at must be within ten years")
        return self

    def expiry(self, now: datetime) -> datetime | None:
        if self.expires_in_s is not None:
            return now + timedelta(seconds=self.expires_in_s)
        return self.expires_at


@dataclass(frozen=True, slots=True)
class ApiKeyView:
    """What is shown of a key after its creation: never the key."""

    id: uuid.UUID
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    owner_email: str
    organisation_id: uuid.UUID
    role: str
    operator: bool = False

    @property
    def status(self) -> ApiKeyStatus:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= datetime.now(UTC):
            return "expired"
        return "active"


@dataclass(frozen=True, slots=True)
class CreatedApiKey:
    view: ApiKeyView
    key: str
    """The key itself: shown in this response only."""


def _view(row: ApiKey, owner_email: str) -> ApiKeyView:
    return ApiKeyView(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        owner_email=owner_email,
        organisation_id=row.organisation_id,
        role=row.role,
        operator=row.operator,
    )


def _with_owner() -> Select[ApiKey, str]:
    return select(ApiKey, User.email).join(User, User.id == ApiKey.user_id)


def parse_key_id(raw: str | uuid.UUID) -> uuid.UUID:
    """Key ids are UUIDs; anything else is a key that does not exist."""
    if isinstance(raw, uuid.UUID):
        return raw
    try:
        return uuid.UUID(raw)
    except (ValueError, TypeError, AttributeError):
        raise NotFound(f"no API key with id {str(raw)[:100]!r}") from None


async def create_api_key(
    services: Services,
    user_id: uuid.UUID,
    request: ApiKeyRequest,
    *,
    organisation_id: uuid.UUID | None = None,
    caller_role: str | None = None,
    caller_operator: bool | None = None,
    actor: Actor = CLI,
) -> CreatedApiKey:
    """A key of the user in `organisation_id` (None: their default one). Its role is at most
    the user's role there and `caller_role` (the credential asking: an API key may create only
    keys as weak as itself); likewise operator powers need an operator user and, when the
    credential asking is given, `caller_operator`."""
    new_key = generate_api_key()
    async with services.sessionmaker.begin() as session:
        owner = await session.get(User, user_id)
        if owner is None:
            raise NotFound("no such user")
        if organisation_id is None:
            organisation_id, member_role = await default_membership(session, user_id)
        else:
            found_role = await membership_role(session, user_id, organisation_id)
            if found_role is None:
                raise NotFound(f"no organisation with id {str(organisation_id)!r}")
            member_role = found_role
        cap = weaker(member_role, caller_role) if caller_role else member_role
        role = request.role or cap
        if not at_least(cap, role):
            raise RoleEscalation(
                f"an API key's role cannot exceed yours ({cap})",
                details={"requested": role, "allowed": cap},
            )
        if request.operator and not (owner.operator and caller_operator is not False):
            raise RoleEscalation(
                "only the server's operator creates keys with operator powers, from a session "
                "or a key that has them",
                details={"requested": "operator"},
            )
        row = ApiKey(
            user_id=user_id,
            organisation_id=organisation_id,
            role=role,
            operator=request.operator,
            name=request.name,
            prefix=new_key.prefix,
            key_hash=new_key.key_hash,
            expires_at=request.expiry(datetime.now(UTC)),
        )
        session.add(row)
        await session.flush()
        await session.refresh(row)
        await audit.record(session, Action.API_KEY_CREATED, actor, target=("api_key", row.id),
                           details={"owner_id": str(user_id), "prefix": row.prefix, "role": role,
                                    "operator": request.operator,
                                    "organisation_id": str(organisation_id),
                                    "expires_at": row.expires_at and row.expires_at.isoformat()})  # fmt: skip
    return CreatedApiKey(view=_view(row, owner.email), key=new_key.plaintext)


async def list_api_keys(
    services: Services, user_id: uuid.UUID | None, *, limit: int = 100, offset: int = 0
) -> list[ApiKeyView]:
    """The user's keys (every user's when `user_id` is None: the operator's view), newest
    first, revoked and expired ones included."""
    statement = _with_owner().order_by(ApiKey.created_at.desc(), ApiKey.id)
    if user_id is not None:
        statement = statement.where(ApiKey.user_id == user_id)
    async with services.sessionmaker() as session:
        rows = (await session.execute(statement.limit(limit).offset(offset))).all()
    return [_view(row, email) for row, email in rows]


async def revoke_api_key(
    services: Services,
    key_id: str | uuid.UUID,
    *,
    owner_id: uuid.UUID | None,
    actor: Actor = CLI,
) -> ApiKeyView:
    """Revoke a key (again is fine: the first revocation time stays). With `owner_id`, another
    user's key is NOT_FOUND; None is the operator revoking any key."""
    parsed = parse_key_id(key_id)
    statement = _with_owner().where(ApiKey.id == parsed)
    if owner_id is not None:
        statement = statement.where(ApiKey.user_id == owner_id)
    async with services.sessionmaker.begin() as session:
        found = (await session.execute(statement.with_for_update(of=ApiKey))).first()
        if found is None:
            raise NotFound(f"no API key with id {str(parsed)!r}")
        row, email = found
        if row.revoked_at is None:
            row.revoked_at = datetime.now(UTC)
            await audit.record(session, Action.API_KEY_REVOKED, actor, target=("api_key", row.id),
                               details={"owner_id": str(row.user_id), "prefix": row.prefix})  # fmt: skip
        return _view(row, email)


async def revoke_user_api_keys(session: AsyncSession, user_id: uuid.UUID) -> int:
    """Revoke every active key of the user within the caller's transaction; how many."""
    result = await session.execute(
        update(ApiKey)
        .where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
        .returning(ApiKey.id)
    )
    return len(result.all())


async def count_active_api_keys(session: AsyncSession, user_id: uuid.UUID) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(ApiKey)
        .where(
            ApiKey.user_id == user_id,
            ApiKey.revoked_at.is_(None),
            or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > func.now()),
        )
    )
    return int(count or 0)


async def find_api_key(services: Services, reference: str) -> uuid.UUID:
    """An operator's reference to a key: its id or its prefix (`psr_1a2b3c4d`)."""
    if not reference.startswith(KEY_PREFIX):
        return parse_key_id(reference)
    async with services.sessionmaker() as session:
        ids = list(await session.scalars(select(ApiKey.id).where(ApiKey.prefix == reference)))
    if not ids:
        raise NotFound(f"no API key with prefix {reference[:100]!r}")
    if len(ids) > 1:
        raise Conflict(f"{len(ids)} keys share the prefix {reference!r}: revoke by id")
    return ids[0]


async def authenticate_api_key(services: Services, plaintext: str) -> Principal:
    now = datetime.now(UTC)
    async with services.sessionmaker.begin() as session:
        found = (
            await session.execute(
                select(ApiKey, User, Membership.role)
                .join(User, User.id == ApiKey.user_id)
                .outerjoin(
                    Membership,
                    (Membership.user_id == ApiKey.user_id)
                    & (Membership.organisation_id == ApiKey.organisation_id),
                )
                .where(ApiKey.key_hash == hash_api_key(plaintext))
            )
        ).first()
        if found is None:
            raise Unauthenticated("the API key is invalid")
        row, user, member_role = found
        if member_role is None:
            raise Unauthenticated("the API key's creator is no longer in its organisation")
        if row.revoked_at is not None:
            raise Unauthenticated("the API key was revoked")
        if row.expires_at is not None and row.expires_at <= now:
            raise Unauthenticated("the API key has expired")
        if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
            await session.execute(
                update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now)
            )
        return Principal(
            user_id=user.id, email=user.email, role=weaker(row.role, member_role), via="api_key",
            organisation_id=row.organisation_id, operator=user.operator and row.operator,
            api_key_id=row.id,
        )  # fmt: skip
