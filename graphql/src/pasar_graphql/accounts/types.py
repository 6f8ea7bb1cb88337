"""GraphQL types for users, access tokens, password changes and API keys."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry
from pasar_core.accounts.api_key_store import ApiKeyView, CreatedApiKey
from pasar_core.accounts.principal import Principal
from pasar_core.accounts.service import PasswordChanged as PasswordChangedResult
from pasar_core.accounts.service import SignedUp, TokenPair


@strawberry.type(description="A registered user.")
class User:
    id: strawberry.ID
    email: str
    role: str = strawberry.field(description="Their role in their personal organisation.")
    organisation_id: strawberry.ID = strawberry.field(
        description="Their personal organisation (they are its admin)."
    )
    created_at: datetime

    @classmethod
    def of(cls, signed_up: SignedUp) -> User:
        user = signed_up.user
        return cls(
            id=strawberry.ID(str(user.id)),
            email=user.email,
            role="admin",
            organisation_id=strawberry.ID(str(signed_up.organisation_id)),
            created_at=user.created_at,
        )


@strawberry.type(description="The authenticated caller.")
class Viewer:
    id: strawberry.ID
    email: str
    role: str = strawberry.field(description="The role in the organisation acted in.")
    organisation_id: strawberry.ID = strawberry.field(
        description="The organisation the credential acts in."
    )
    operator: bool = strawberry.field(description="The server's operator.")
    authenticated_via: str = strawberry.field(description="`token` or `api_key`.")

    @classmethod
    def of(cls, principal: Principal) -> Viewer:
        return cls(
            id=strawberry.ID(str(principal.user_id)),
            email=principal.email,
            role=principal.role,
            organisation_id=strawberry.ID(str(principal.organisation_id)),
            operator=principal.operator,
            authenticated_via=principal.via,
        )


@strawberry.type(description="A bearer token: send it as `Authorization: Bearer <accessToken>`.")
class AccessToken:
    access_token: str
    token_type: str
    expires_in: int = strawberry.field(description="Seconds until the token expires.")
    refresh_token: str = strawberry.field(
        description="Spend it with `refreshToken` for the next pair; each works once."
    )
    refresh_expires_in: int

    @classmethod
    def of(cls, pair: TokenPair) -> AccessToken:
        return cls(
            access_token=pair.access.token,
            token_type=pair.access.token_type,
            expires_in=pair.access.expires_in,
            refresh_token=pair.refresh.token,
            refresh_expires_in=pair.refresh.expires_in,
        )


@strawberry.type(description="The password was changed and every earlier session revoked.")
class PasswordChanged:
    token: AccessToken = strawberry.field(description="A new session for the caller.")
    sessions_revoked: int
    api_keys_revoked: int
    api_keys_active: int = strawberry.field(
        description="API keys that still work (they are kept unless `revokeApiKeys: true`)."
    )

    @classmethod
    def of(cls, changed: PasswordChangedResult) -> PasswordChanged:
        return cls(
            token=AccessToken.of(changed.tokens),
            sessions_revoked=changed.sessions_revoked,
            api_keys_revoked=changed.api_keys_revoked,
            api_keys_active=changed.api_keys_active,
        )


@strawberry.enum(description="Whether an API key still works.")
class ApiKeyStatus(Enum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


@strawberry.type(description="One of your API keys as listed: never the key itself.")
class ApiKeyInfo:
    id: strawberry.ID
    name: str
    prefix: str
    status: ApiKeyStatus
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    role: str
    organisation_id: strawberry.ID
    operator: bool

    @classmethod
    def of(cls, view: ApiKeyView) -> ApiKeyInfo:
        return cls(
            id=strawberry.ID(str(view.id)),
            role=view.role,
            operator=view.operator,
            organisation_id=strawberry.ID(str(view.organisation_id)),
            name=view.name,
            prefix=view.prefix,
            status=ApiKeyStatus(view.status),
            created_at=view.created_at,
            last_used_at=view.last_used_at,
            expires_at=view.expires_at,
            revoked_at=view.revoked_at,
        )


@strawberry.type(description="A new API key. `key` is shown only once, in this response.")
class ApiKey:
    id: strawberry.ID
    name: str
    prefix: str
    key: str
    created_at: datetime
    expires_at: datetime | None
    role: str
    organisation_id: strawberry.ID
    operator: bool

    @classmethod
    def of(cls, created: CreatedApiKey) -> ApiKey:
        view = created.view
        return cls(
            id=strawberry.ID(str(view.id)),
            role=view.role,
            operator=view.operator,
            organisation_id=strawberry.ID(str(view.organisation_id)),
            name=view.name,
            prefix=view.prefix,
            key=created.key,
            created_at=view.created_at,
            expires_at=view.expires_at,
        )
