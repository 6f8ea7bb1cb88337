"""Calling a hook's implementations one at a time, each with only the arguments it names.

pluggy passes an implementation just the arguments in its signature (`HookImpl.argnames`), which
is what lets a hook gain arguments without breaking plugins written before. Calling
`impl.function()` by hand would lose that; these helpers keep it while reporting which plugin
answered (or raised).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Mapping
from typing import TypeVar

import pluggy

T = TypeVar("T")


def implementations(pm: pluggy.PluginManager, hook: str) -> list[pluggy.HookImpl]:
    """The plain implementations of `hook` in pluggy's call order (LIFO, tryfirst/trylast kept);
    wrappers are left out: they wrap a whole call, not one plugin's answer."""
    caller = getattr(pm.hook, hook, None)
    if caller is None:
        return []
    impls = [impl for impl in caller.get_hookimpls() if not (impl.hookwrapper or impl.wrapper)]
    return list(reversed(impls))


def call_implementation(impl: pluggy.HookImpl, arguments: Mapping[str, object]) -> object:
    """`impl` called with the arguments it names, taken from the hook call's `arguments`."""
    return impl.function(*(arguments[name] for name in impl.argnames))


async def await_me_maybe(value: T | Awaitable[T]) -> T:
    """`value`, awaited first when a hook returned an awaitable (as datasette does)."""
    if inspect.isawaitable(value):
        return await value
    return value
