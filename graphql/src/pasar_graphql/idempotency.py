"""`idempotencyKey` on createAgent, registerTool, executeAgent and createSchedule (see `pasar_core.idempotency`):
the same key and arguments answer the first result again; other arguments are
`IDEMPOTENCY_KEY_REUSED`. Only successes are kept: a mutation that raised gives its key back
(its arguments fail the same way again), unless it had created a run (`once_creating`): it
held its claim in the transaction that created the run, and a retry answers that run."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pasar_core.idempotency import Claim, checked_key, claim, request_digest
from sqlalchemy.ext.asyncio import AsyncSession

from pasar_graphql.context import Info

T = TypeVar("T")
Hold = Callable[[AsyncSession, uuid.UUID], Awaitable[None]]
"""`Claim.hold`: what a mutation that creates a run calls in the transaction creating it."""


async def once(
    info: Info,
    field: str,
    key: str | None,
    arguments: Any,
    run: Callable[[], Awaitable[T]],
    dump: Callable[[T], Any],
    load: Callable[[Any], Awaitable[T]],
) -> T:
    async def unheld(_: Hold | None) -> T:
        return await run()

    return await once_creating(info, field, key, arguments, unheld, dump, load, load)


async def once_creating(
    info: Info,
    field: str,
    key: str | None,
    arguments: Any,
    create: Callable[[Hold | None], Awaitable[T]],
    dump: Callable[[T], Any],
    load: Callable[[Any], Awaitable[T]],
    resume: Callable[[str], Awaitable[T]],
) -> T:
    """`once` for a mutation that passes `hold` on to what it creates: a retry of a mutation
    that created something and never answered gets `resume(its id)`."""
    if key is None:
        return await create(None)
    context = info.context
    principal = await context.principal()
    claimed = await claim(
        context.services, principal.user_id, principal.organisation_id, f"graphql {field}", checked_key(key),
        request_digest(field, arguments),
    )  # fmt: skip
    if not isinstance(claimed, Claim):
        if claimed.created is not None:
            return await resume(claimed.created)
        return await load(claimed.body)
    try:
        result = await create(claimed.hold)
    except BaseException:
        await claimed.release()  # a held claim is kept
        raise
    await claimed.complete(200, dump(result))
    return result
