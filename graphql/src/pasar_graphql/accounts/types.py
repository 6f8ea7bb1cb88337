"""GraphQL types for users, access tokens and API keys."""

from __future__ import annotations

from datetime import datetime

import strawberry
from pasar_core.accounts.principal import Principal
from pasar_core.accounts.service import CreatedApiKey, TokenPair
from pasar_core.storage.models import User as UserRow


@strawberry.type(description="A registered user.")
class User:
    id: strawberry.ID
    email: str
    role: str
    created_at: datetime

    @classmethod
    def of(cls, user: UserRow) -> User:
        return cls(
            id=strawberry.ID(str(user.id)),
            email=user.email,
            role=user.role,
            created_at=user.created_at,
        )


@strawberry.type(description="The authenticated caller.")
class Viewer:
    id: strawberry.ID
    email: str
    role: str
    authenticated_via: str = strawberry.field(description="`token` or `api_key`.")

    @classmethod
    def of(cls, principal: Principal) -> Viewer:
        return cls(
            id=strawberry.ID(str(principal.user_id)),
            email=principal.email,
            role=principal.role,
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


@strawberry.type(description="A new API key. `key` is shown only once, in this response.")
class ApiKey:
    id: strawberry.ID
    name: str
    prefix: str
    key: str
    created_at: datetime

    @classmethod
    def of(cls, created: CreatedApiKey) -> ApiKey:
        return cls(
            id=strawberry.ID(str(created.id)),
            name=created.name,
            prefix=created.prefix,
            key=created.key,
            created_at=created.created_at,
        )
