"""`pasar.sse.paced`: pings while the source is silent, the bound, and the source closed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from pasar.sse import paced

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Source:
    """Yields what is put in its queue; records that it was closed."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.closed = False

    async def items(self) -> AsyncIterator[str]:
        try:
            while (item := await self.queue.get()) is not None:
                yield item
        finally:
            self.closed = True


async def test_a_silent_source_is_pinged_and_its_items_pass_in_order() -> None:
    source = Source()
    stream = paced(source.items(), ping_s=0.01)
    assert await anext(stream) is None  # nothing yet: a ping
    assert await anext(stream) is None
    source.queue.put_nowait("a")
    source.queue.put_nowait("b")
    assert [await anext(stream), await anext(stream)] == ["a", "b"]
    source.queue.put_nowait(None)  # the source ends: so does the stream
    assert [item async for item in stream] == []
    assert source.closed


async def test_the_bound_ends_a_silent_stream_and_closes_the_source() -> None:
    source = Source()
    stream = paced(source.items(), ping_s=3600, within_s=0.01)
    with pytest.raises(TimeoutError):
        await anext(stream)  # no ping is due within the bound: the bound comes first
    assert source.closed


async def test_closing_the_stream_early_closes_the_source() -> None:
    source = Source()
    stream = paced(source.items(), ping_s=0.01)
    assert await anext(stream) is None
    await stream.aclose()  # the client went away while an item was awaited
    assert source.closed
