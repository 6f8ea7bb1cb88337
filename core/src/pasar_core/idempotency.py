"""`Idempotency-Key`: the same key and body from the same caller on the same route, within the
window, answers what the first request answered; the same key with another body is 422
`IDEMPOTENCY_KEY_REUSED`.

The caller is a user acting in one organisation: their sessions and API keys there share their
keys; another user of the organisation, or the same user acting in another organisation, never
sees (nor collides with) them.

A key is claimed with one `INSERT ... ON CONFLICT` on the primary key (user, organisation,
route, key), so of
concurrent duplicates exactly one claims it and runs; the others see the claim and answer 409
`IDEMPOTENCY_KEY_IN_PROGRESS` (Retry-After: 1) until the first answer is stored, then that
answer. An expired claim is taken over by the same statement. A request that failed on the
server's side (5xx, a crash) gives its claim back, so a retry runs again; a typed client error
(4xx) is kept and replayed like a success. A handler that creates a run holds the claim in the
transaction that creates it (`Claim.hold`): from then on a failure, a lost connection or a
crash keeps the claim, and a retry answers that run (`Stored.created`), never a second one. A claim also deletes the caller's expired keys, and
the maintenance pass (`sweep_expired`, with retention) deletes everybody's. Costs two short transactions, only for requests that send the header.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, delete, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from pasar_core.errors import BadRequest, Conflict, PasarError
from pasar_core.json_input import decode_json
from pasar_core.services import Services
from pasar_core.storage.db import patient_checkouts
from pasar_core.storage.models import IdempotencyKey

KEYS = cast("Table", IdempotencyKey.__table__)
MAX_KEY_LENGTH = 255
HEADER = "idempotency-key"
SETTLE_WAIT_S = 30.0
"""How long completing or giving back a claim waits for a database connection."""
HELD_STATUS = 202
"""The status of a held claim: something was created, its request has not answered yet."""


class IdempotencyKeyInvalid(BadRequest):
    code = "IDEMPOTENCY_KEY_INVALID"


class IdempotencyKeyReused(PasarError):
    code = "IDEMPOTENCY_KEY_REUSED"
    status = 422


class IdempotencyInProgress(Conflict):
    code = "IDEMPOTENCY_KEY_IN_PROGRESS"

    def __init__(self) -> None:
        super().__init__(
            "a request with this Idempotency-Key is still running; retry shortly for its answer",
            details={"retry_after_s": 1},
        )


def checked_key(raw: str) -> str:
    key = raw.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable() or not key.isascii():
        raise IdempotencyKeyInvalid(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters"
        )
    return key


def request_digest(target: str, body: bytes | Any) -> str:
    """What makes two requests the same: the target (path with ids) and the body, as JSON with
    sorted keys when it parses (so key order and spacing do not matter), else its bytes."""
    if isinstance(body, bytes):
        try:
            body = decode_json(body)
        except PasarError:
            raw = body
        else:
            raw = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    else:
        raw = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(target.encode() + b"\n" + raw).hexdigest()


@dataclass(frozen=True, slots=True)
class Stored:
    """The first answer: an HTTP status and its JSON body."""

    status: int
    body: Any
    created: str | None = None
    """What the first request created before it was interrupted (it never stored an answer):
    the route answers that resource's current state."""


def without_nul(value: Any) -> Any:
    """`value` with U+0000 in its strings replaced (PostgreSQL's JSONB cannot hold it); an
    answer that echoes what a caller sent is kept for replays all the same."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_nul(item) for item in value]
    return value


@dataclass(frozen=True, slots=True)
class Claim:
    services: Services
    user_id: uuid.UUID
    organisation_id: uuid.UUID
    route: str
    key: str

    def _where(self) -> Any:
        c = KEYS.c
        return ((c.user_id == self.user_id) & (c.organisation_id == self.organisation_id)
                & (c.route == self.route) & (c.key == self.key))  # fmt: skip

    async def complete(self, status: int, body: Any) -> None:
        """Keep the answer for replays (a server failure gives the claim back instead, unless
        the claim is held: then a replay answers what was created)."""
        if status >= 500:
            await self.release()
            return
        with patient_checkouts(SETTLE_WAIT_S):
            async with self.services.sessionmaker.begin() as session:
                await session.execute(
                    update(KEYS)
                    .where(self._where())
                    .values(status=status, response={"body": without_nul(body)})
                )

    async def hold(self, session: AsyncSession, created: uuid.UUID) -> None:
        """In the transaction that creates `created`: the claim outlives this request from
        then on (`release` keeps it); until `complete`, a replay answers what was created."""
        await session.execute(
            update(KEYS)
            .where(self._where())
            .values(status=HELD_STATUS, response={"created": str(created)})
        )

    async def release(self) -> None:
        # Patient: a release refused by a full pool would leave the key claimed (409 to every
        # retry) until the window ends.
        with patient_checkouts(SETTLE_WAIT_S):
            async with self.services.sessionmaker.begin() as session:
                await session.execute(delete(KEYS).where(self._where(), KEYS.c.status.is_(None)))


async def claim(
    services: Services,
    user_id: uuid.UUID,
    organisation_id: uuid.UUID,
    route: str,
    key: str,
    digest: str,
) -> Claim | Stored:
    """Claim `key` for this request (returns the `Claim` to complete), or the stored answer
    of the first request; `IdempotencyKeyReused` / `IdempotencyInProgress` otherwise."""
    now = datetime.now(UTC)
    expires = now + timedelta(seconds=services.settings.idempotency_window_s)
    c = KEYS.c
    fresh = insert(KEYS).values(
        user_id=user_id, organisation_id=organisation_id, route=route, key=key,
        request_hash=digest, expires_at=expires,
    )  # fmt: skip
    statement = fresh.on_conflict_do_update(
        index_elements=[c.user_id, c.organisation_id, c.route, c.key],
        set_={"request_hash": digest, "status": None, "response": None, "created_at": now,
              "expires_at": expires},
        where=c.expires_at < now,
    ).returning(c.key)  # fmt: skip
    async with services.sessionmaker.begin() as session:
        # The caller's expired keys go first (their primary keys start with the user's id).
        await session.execute(
            delete(KEYS).where(c.user_id == user_id, c.expires_at < now, c.key != key)
        )
        if (await session.execute(statement)).first() is not None:
            return Claim(services, user_id, organisation_id, route, key)
        row = (
            await session.execute(
                select(c.request_hash, c.status, c.response).where(
                    c.user_id == user_id, c.organisation_id == organisation_id,
                    c.route == route, c.key == key,
                )
            )
        ).first()  # fmt: skip
    if row is None:  # released between the two statements: the caller may simply retry
        raise IdempotencyInProgress()
    if row.request_hash != digest:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used with another request; use a new key",
            details={"route": route},
        )
    if row.status is None:
        raise IdempotencyInProgress()
    response = row.response or {}
    return Stored(row.status, response.get("body"), response.get("created"))


async def sweep_expired(engine: AsyncEngine, *, batch: int = 1000) -> int:
    """Delete every caller's expired keys (bounded batches, each its own transaction)."""
    c = KEYS.c
    total = 0
    while True:
        old = (
            select(c.user_id, c.organisation_id, c.route, c.key)
            .where(c.expires_at < datetime.now(UTC))
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
        async with engine.begin() as conn:
            gone = (
                await conn.execute(
                    delete(KEYS).where(
                        tuple_(c.user_id, c.organisation_id, c.route, c.key).in_(old)
                    )
                )
            ).rowcount
        total += gone
        if gone < batch:
            return total
