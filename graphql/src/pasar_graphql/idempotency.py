"""`idempotencyKey` on createAgent, registerTool, executeAgent and createSchedule (see `pasar_core.idempotency`):
the same key and arguments answer the first result again; other arguments are
`IDEMPOTENCY_KEY_REUSED`. Only successes are kept: a mutation that raised gives its key back
(its arguments fail the same way again)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pasar_core.idempotency import Claim, checked_key, claim, request_digest

from pasar_graphql.context import Info

T = TypeVar("T")


async def once(
    info: Info,
    field: str,
    key: str | None,
    arguments: Any,
    run: Callable[[], Awaitable[T]],
    dump: Callable[[T], Any],
    load: Callable[[Any], Awaitable[T]],
) -> T:
    if key is None:
        return await run()
    context = info.context
    principal = await context.principal()
    claimed = await claim(
        context.services, principal.user_id, principal.organisation_id, f"graphql {field}", checked_key(key),
        request_digest(field, arguments),
    )  # fmt: skip
    if not isinstance(claimed, Claim):
        return await load(claimed.body)
    try:
        result = await run()
    except BaseException:
        await claimed.release()
        raise
    await claimed.complete(200, dump(result))
    return result
