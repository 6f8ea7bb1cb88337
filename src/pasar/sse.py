"""Server-sent event streams kept alive: a `: ping` comment whenever nothing was sent for a
while (proxies close idle connections), and an optional bound on how long a stream follows."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TypeVar

T = TypeVar("T")

PING = ": ping\n\n"
"""An SSE comment: clients (browsers' EventSource, OpenAI's SDKs) skip it."""


async def paced(
    source: AsyncIterator[T], *, ping_s: float, within_s: float | None = None
) -> AsyncGenerator[T | None, None]:
    """`source`'s items, and None each time `ping_s` passed without one (send a ping then);
    raises TimeoutError once `within_s` passed (None: no bound). `source` is closed on exit."""
    loop = asyncio.get_running_loop()
    deadline = None if within_s is None else loop.time() + within_s

    async def step() -> T:
        return await anext(source)

    pending: asyncio.Task[T] | None = None
    try:
        while True:
            pending = pending or asyncio.ensure_future(step())
            wait = ping_s if deadline is None else min(ping_s, deadline - loop.time())
            done, _ = await asyncio.wait({pending}, timeout=max(0.0, wait))
            if pending in done:
                finished, pending = pending, None
                try:
                    item = finished.result()
                except StopAsyncIteration:
                    return
                yield item
            elif deadline is not None and loop.time() >= deadline:
                raise TimeoutError
            else:
                yield None
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            await aclose()
